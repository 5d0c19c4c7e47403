package state

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// capture is a Collector that prints what a store emits.
type capture struct{ out []string }

func (c *capture) Send(r *topology.OutRecord) {
	v := "<tombstone>"
	if r.Value != nil {
		v = string(r.Value)
	}
	c.out = append(c.out, fmt.Sprintf("changelog %s[%d] %s=%s @%d", r.Topic, r.Partition, r.Key, v, r.Timestamp.UnixMilli()))
}
func (c *capture) PartitionCount(string) (int32, error) { return 1, nil }

// TestKeyValueSemantics runs testdata/kv on both backends: the same commands must print the same
// results, whether state lives in Pebble or in memory.
func TestKeyValueSemantics(t *testing.T) {
	for _, backend := range []string{"pebble", "memory"} {
		t.Run(backend, func(t *testing.T) {
			var m *Manager
			var err error
			if backend == "pebble" {
				m, err = OpenManager(ManagerOptions{Dir: t.TempDir()})
			} else {
				m, err = OpenManager(ManagerOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var s *kvStore[string, string]
			col := &capture{}
			ts := int64(0)
			open := func(td *datadriven.TestData) {
				caching := !td.HasArg("nocache")
				spec := NewKeyValue("kv", serde.String(), serde.String(), WithCaching(caching))
				st, err := m.OpenStore(topology.StoreContext{Task: topology.TaskID{Partition: 2}, Spec: spec,
					Changelog: "app-kv-changelog", Collector: col, Timestamp: func() int64 { return ts },
					RequestCommit: func() { col.out = append(col.out, "commit requested") }})
				if err != nil {
					t.Fatal(err)
				}
				s = st.(*kvStore[string, string])
				s.SetFlushListener(func(f Flushed[string, string]) error {
					line := "flushed " + f.Key + ": "
					if f.HasOld {
						line += f.Old
					} else {
						line += "<none>"
					}
					line += " -> "
					if f.HasNew {
						line += f.New
					} else {
						line += "<deleted>"
					}
					col.out = append(col.out, line)
					return nil
				})
			}
			datadriven.RunTest(t, "testdata/kv", func(t *testing.T, td *datadriven.TestData) string {
				var out []string
				fail := func(err error) string { return "error: " + err.Error() + "\n" }
				col.out = nil
				switch td.Cmd {
				case "open":
					open(td)
					return "ok\n"
				case "close":
					if err := s.Close(); err != nil {
						return fail(err)
					}
					return "ok\n"
				case "at":
					ts, _ = strconv.ParseInt(td.CmdArgs[0].Key, 10, 64)
					return "ok\n"
				case "put":
					for _, a := range td.CmdArgs {
						if err := s.Put(a.Key, a.Vals[0]); err != nil {
							return fail(err)
						}
					}
				case "delete":
					for _, a := range td.CmdArgs {
						if err := s.Delete(a.Key); err != nil {
							return fail(err)
						}
					}
				case "get":
					for _, a := range td.CmdArgs {
						v, at, ok, err := s.GetWithTimestamp(a.Key)
						if err != nil {
							return fail(err)
						}
						if ok {
							out = append(out, fmt.Sprintf("%s=%s @%d", a.Key, v, at.UnixMilli()))
						} else {
							out = append(out, a.Key+" not found")
						}
					}
				case "range", "prefix", "all":
					var it Iterator[string, string]
					var err error
					switch td.Cmd {
					case "range":
						it, err = s.Range(td.CmdArgs[0].Key, td.CmdArgs[1].Key)
					case "prefix":
						it, err = s.PrefixScan([]byte(td.CmdArgs[0].Key))
					default:
						it, err = s.All()
					}
					if err != nil {
						return fail(err)
					}
					for it.Next() {
						out = append(out, it.Key()+"="+it.Value())
					}
					if err := it.Err(); err != nil {
						return fail(err)
					}
					it.Close()
					if len(out) == 0 {
						out = append(out, "<empty>")
					}
				case "count":
					n, err := s.ApproximateCount()
					if err != nil {
						return fail(err)
					}
					out = append(out, strconv.FormatInt(n, 10))
				case "flush":
					if err := s.Flush(); err != nil {
						return fail(err)
					}
				case "commit":
					next := int64(-1)
					if td.HasArg("next") {
						td.ScanArgs(t, "next", &next)
					}
					if err := s.Commit(next); err != nil {
						return fail(err)
					}
				case "checkpoint":
					off, ok, err := s.RestoreFrom()
					if err != nil {
						return fail(err)
					}
					if !ok {
						return "none\n"
					}
					return fmt.Sprintf("%d\n", off)
				case "restore":
					var recs []topology.ChangelogEntry
					next := int64(0)
					for _, a := range td.CmdArgs {
						if a.Key == "next" {
							next, _ = strconv.ParseInt(a.Vals[0], 10, 64)
							continue
						}
						e := topology.ChangelogEntry{Key: []byte(a.Key), Timestamp: ts}
						if a.Vals[0] != "<tombstone>" {
							e.Value = []byte(a.Vals[0])
						}
						recs = append(recs, e)
					}
					if err := s.Restore(recs, next); err != nil {
						return fail(err)
					}
				case "wipe":
					if err := s.Wipe(); err != nil {
						return fail(err)
					}
				case "local":
					sps, err := m.Checkpointed()
					if err != nil {
						return fail(err)
					}
					if backend == "memory" {
						return td.Expected // memory stores do not outlive the process: nothing to list
					}
					for _, sp := range sps {
						out = append(out, fmt.Sprintf("%s/%d", sp.Store, sp.Partition))
					}
					sort.Strings(out)
				default:
					t.Fatalf("unknown command %s", td.Cmd)
				}
				out = append(col.out, out...)
				if len(out) == 0 {
					return "ok\n"
				}
				return strings.Join(out, "\n") + "\n"
			})
		})
	}
}

func TestSecondInstanceOnTheSameDirFails(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(ManagerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenManager(ManagerOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "is in use by process") {
		t.Fatalf("second manager: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := OpenManager(ManagerOptions{Dir: dir})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	m2.Close()
}

// A window store's observed time raised without a write (AdvanceObserved: stream time moved by a
// punctuation) makes the store dirty; its flush writes a time marker to the changelog, and the
// commit after it saves the time in the checkpoint. A restart on the same dir, and a restore from
// the changelog alone (another instance), both come back with that time.
func TestAdvancedObservedTimeIsKept(t *testing.T) {
	dir := t.TempDir()
	col := &capture{}
	open := func(dir string) (*Manager, *windowStore[string, string]) {
		m, err := OpenManager(ManagerOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		spec := NewWindowStore("w", serde.String(), serde.String(), time.Minute)
		st, err := m.OpenStore(topology.StoreContext{Task: topology.TaskID{Partition: 1}, Spec: spec,
			Changelog: "app-w-changelog", Collector: col, Timestamp: func() int64 { return 5000 }})
		if err != nil {
			t.Fatal(err)
		}
		return m, st.(*windowStore[string, string])
	}
	m, w := open(dir)
	if err := w.Put("k", time.UnixMilli(0), "v"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.Dirty() {
		t.Fatal("dirty after a flush of writes that carry the observed time")
	}
	w.AdvanceObserved(time.UnixMilli(90_000))
	w.AdvanceObserved(time.UnixMilli(60_000)) // never back
	if !w.Dirty() {
		t.Fatal("not dirty after AdvanceObserved: the time would not reach the changelog")
	}
	col.out = nil
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"changelog app-w-changelog[1] \x00=" + string(binary.BigEndian.AppendUint64(nil, 90_000)) + " @90000"}; !slices.Equal(col.out, want) {
		t.Fatalf("flush wrote %q, want one time marker %q", col.out, want)
	}
	if w.Dirty() {
		t.Fatal("dirty after the marker was written")
	}
	if err := w.Commit(2); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m, w = open(dir) // a restart on the same dir
	if got := w.Observed().UnixMilli(); got != 90_000 {
		t.Fatalf("observed %d after a restart, want 90000 (AdvanceObserved's)", got)
	}
	if w.Dirty() {
		t.Fatal("dirty after a restart: the checkpoint's time is in the changelog already")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Another instance: an empty dir, restored from a changelog of a window and a marker; the
	// marker sets the time and is not a window.
	m, w = open(t.TempDir())
	defer m.Close()
	changelog := []topology.ChangelogEntry{
		{Key: windowKey(w.seg(80_000), []byte("k"), 80_000), Value: []byte("v"), Timestamp: 85_000},
		{Key: timeMarkerKey, Value: binary.BigEndian.AppendUint64(nil, 90_000), Timestamp: 90_000},
	}
	if err := w.Restore(changelog, 2); err != nil {
		t.Fatal(err)
	}
	if got := w.Observed().UnixMilli(); got != 90_000 {
		t.Fatalf("observed %d after a restore, want the marker's 90000", got)
	}
	it, err := w.kvStore.All() // the raw keys: the window's, not the marker's
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var keys []string
	for it.Next() {
		keys = append(keys, fmt.Sprintf("%x", it.Key()))
	}
	if want := []string{fmt.Sprintf("%x", windowKey(w.seg(80_000), []byte("k"), 80_000))}; !slices.Equal(keys, want) {
		t.Errorf("restored keys %v, want only the window's %v", keys, want)
	}
}

// The changelog's ID a store is told (UseChangelog) is kept with every checkpoint it writes, by
// a commit and by a restore, on both backends, and read back after a restart on the same dir
// (Pebble). A checkpoint of the old 16-byte encoding (written before IDs were kept) decodes with
// no ID.
func TestCheckpointKeepsTheChangelogID(t *testing.T) {
	id := topology.ChangelogID{0xde, 0xad, 15: 0x01}
	for _, memory := range []bool{false, true} {
		t.Run(fmt.Sprintf("memory=%v", memory), func(t *testing.T) {
			dir := t.TempDir()
			open := func() (*Manager, *kvStore[string, string]) {
				m, err := OpenManager(ManagerOptions{Dir: dir})
				if err != nil {
					t.Fatal(err)
				}
				var opts []Option
				if memory {
					opts = append(opts, InMemory())
				}
				st, err := m.OpenStore(topology.StoreContext{Task: topology.TaskID{Partition: 0},
					Spec: NewKeyValue("kv", serde.String(), serde.String(), opts...), Changelog: "app-kv-changelog",
					Collector: &capture{}, Timestamp: func() int64 { return 1 }})
				if err != nil {
					t.Fatal(err)
				}
				return m, st.(*kvStore[string, string])
			}
			m, s := open()
			if got, err := s.CheckpointChangelog(); err != nil || got != (topology.ChangelogID{}) {
				t.Fatalf("a new store's checkpoint changelog: %v %v, want none", got, err)
			}
			s.UseChangelog(id)
			if err := s.Restore([]topology.ChangelogEntry{{Key: []byte("a"), Value: []byte("1")}}, 1); err != nil {
				t.Fatal(err)
			}
			if got, err := s.CheckpointChangelog(); err != nil || got != id {
				t.Fatalf("after a restore: %v %v, want %v", got, err, id)
			}
			if err := s.Put("b", "2"); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(2); err != nil {
				t.Fatal(err)
			}
			if got, err := s.CheckpointChangelog(); err != nil || got != id {
				t.Fatalf("after a commit: %v %v, want %v", got, err, id)
			}
			if from, ok, err := s.RestoreFrom(); err != nil || !ok || from != 2 {
				t.Fatalf("checkpoint %d %v %v, want 2", from, ok, err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if memory {
				return
			}
			m, s = open()
			defer m.Close()
			if got, err := s.CheckpointChangelog(); err != nil || got != id {
				t.Fatalf("after a restart: %v %v, want %v", got, err, id)
			}
		})
	}
	old := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 7), 9)
	if c, err := decodeCheckpoint(old); err != nil || c != (Checkpoint{Offset: 7, Time: 9}) {
		t.Fatalf("a 16-byte checkpoint decodes to %+v, %v", c, err)
	}
	c := Checkpoint{Offset: 7, Time: 9, Changelog: id}
	if got, err := decodeCheckpoint(encodeCheckpoint(c)); err != nil || got != c {
		t.Fatalf("round trip: %+v, %v, want %+v", got, err, c)
	}
}
