package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/rifflestream/riffle/topology"
)

// tasksOf makes tasks for sub-topologies reading topic "t<sub>" with the given partition counts.
func tasksOf(parts ...int32) []taskInfo {
	var out []taskInfo
	for sub, n := range parts {
		for p := int32(0); p < n; p++ {
			out = append(out, taskInfo{id: topology.TaskID{Subtopology: sub, Partition: p},
				partitions: []topicPartition{{fmt.Sprintf("t%d", sub), p}}})
		}
	}
	return out
}

func members(n int, subs int) []memberInfo {
	var out []memberInfo
	for i := 0; i < n; i++ {
		m := memberInfo{id: fmt.Sprintf("m%d", i), topics: map[string]bool{}, generation: 1}
		for s := 0; s < subs; s++ {
			m.topics[fmt.Sprintf("t%d", s)] = true
		}
		out = append(out, m)
	}
	return out
}

// own records the result of a previous assignment as the members' owned partitions.
func own(ms []memberInfo, tasks []taskInfo, assigned map[int][]topology.TaskID, gen int32) {
	byID := map[topology.TaskID]taskInfo{}
	for _, t := range tasks {
		byID[t.id] = t
	}
	for i := range ms {
		ms[i].owned = nil
		ms[i].generation = gen
		for _, id := range assigned[i] {
			ms[i].owned = append(ms[i].owned, byID[id].partitions...)
		}
	}
}

func checkBalanced(t *testing.T, tasks []taskInfo, ms []memberInfo, got map[int][]topology.TaskID) {
	t.Helper()
	seen := map[topology.TaskID]int{}
	lo, hi := len(tasks), 0
	for i := range ms {
		lo, hi = min(lo, len(got[i])), max(hi, len(got[i]))
		for _, id := range got[i] {
			seen[id]++
		}
	}
	if hi-lo > 1 {
		t.Fatalf("unbalanced: %d to %d tasks per member: %v", lo, hi, got)
	}
	for _, ti := range tasks {
		if seen[ti.id] != 1 {
			t.Fatalf("task %s assigned %d times: %v", ti.id, seen[ti.id], got)
		}
	}
}

func TestAssignBalancesAndSpreadsSubtopologies(t *testing.T) {
	tasks := tasksOf(6, 6, 3)
	ms := members(3, 3)
	got := assignTasks(tasks, ms)
	checkBalanced(t, tasks, ms, got)
	for i := range ms {
		per := map[int]int{}
		for _, id := range got[i] {
			per[id.Subtopology]++
		}
		if per[0] != 2 || per[1] != 2 || per[2] != 1 {
			t.Fatalf("member %d has %v tasks per sub-topology, want 2/2/1: %v", i, per, got)
		}
	}
	if again := assignTasks(tasks, ms); !reflect.DeepEqual(again, got) {
		t.Fatal("not deterministic")
	}
}

func TestAssignIsStickyWhenScaling(t *testing.T) {
	tasks := tasksOf(12)
	one := members(1, 1)
	first := assignTasks(tasks, one)
	checkBalanced(t, tasks, one, first)

	// Scale out 1 -> 3: member 0 keeps 4 of its tasks, the others get 4 each; only 8 move.
	three := members(3, 1)
	own(three, tasks, first, 1)
	second := assignTasks(tasks, three)
	checkBalanced(t, tasks, three, second)
	kept := 0
	for _, id := range second[0] {
		for _, old := range first[0] {
			if id == old {
				kept++
			}
		}
	}
	if kept != 4 {
		t.Fatalf("member 0 kept %d tasks, want 4: %v", kept, second)
	}

	// A rebalance with nothing changed moves nothing.
	own(three, tasks, second, 2)
	if third := assignTasks(tasks, three); !reflect.DeepEqual(third, second) {
		t.Fatalf("a no-op rebalance moved tasks:\n%v\n%v", second, third)
	}

	// Scale in 3 -> 2: the survivors keep all they had.
	two := []memberInfo{three[0], three[2]}
	fourth := assignTasks(tasks, two)
	checkBalanced(t, tasks, two, fourth)
	for i, old := range [][]topology.TaskID{second[0], second[2]} {
		for _, id := range old {
			found := false
			for _, x := range fourth[i] {
				found = found || x == id
			}
			if !found {
				t.Fatalf("surviving member %d lost task %s", i, id)
			}
		}
	}
}

// Scaling out a member that owns tasks of two sub-topologies moves half of each, not all of one.
func TestAssignStickySpreadsSubtopologies(t *testing.T) {
	tasks := tasksOf(4, 4)
	one := members(1, 2)
	first := assignTasks(tasks, one)
	two := members(2, 2)
	own(two, tasks, first, 1)
	got := assignTasks(tasks, two)
	checkBalanced(t, tasks, two, got)
	for i := range two {
		per := map[int]int{}
		for _, id := range got[i] {
			per[id.Subtopology]++
		}
		if per[0] != 2 || per[1] != 2 {
			t.Fatalf("member %d has %v tasks per sub-topology, want 2 and 2: %v", i, per, got)
		}
	}
}

// KIP-792: a member that missed rebalances and still claims a partition at an older generation
// does not take it back from the current owner.
func TestAssignIgnoresStaleClaims(t *testing.T) {
	tasks := tasksOf(2)
	ms := members(2, 1)
	ms[0].generation, ms[1].generation = 3, 5
	ms[0].owned = []topicPartition{{"t0", 0}, {"t0", 1}} // stale
	ms[1].owned = []topicPartition{{"t0", 0}}            // current
	got := assignTasks(tasks, ms)
	if !reflect.DeepEqual(got[1], []topology.TaskID{{Subtopology: 0, Partition: 0}}) {
		t.Fatalf("the current owner lost its task: %v", got)
	}
}

// A restarted member (no owned partitions) gets back the tasks whose state it has on disk.
func TestAssignPrefersLocalState(t *testing.T) {
	tasks := tasksOf(4)
	ms := members(2, 1)
	ms[1].local = []topology.TaskID{{Subtopology: 0, Partition: 0}, {Subtopology: 0, Partition: 3}}
	got := assignTasks(tasks, ms)
	want := []topology.TaskID{{Subtopology: 0, Partition: 0}, {Subtopology: 0, Partition: 3}}
	if !reflect.DeepEqual(got[1], want) {
		t.Fatalf("member 1 got %v, want its local tasks %v", got[1], want)
	}
}

func TestAssignRespectsSubscriptions(t *testing.T) {
	tasks := tasksOf(2, 2)
	ms := members(2, 2)
	delete(ms[1].topics, "t1") // member 1 does not read t1
	got := assignTasks(tasks, ms)
	for _, id := range got[1] {
		if id.Subtopology == 1 {
			t.Fatalf("member 1 got %s of a topic it does not read: %v", id, got)
		}
	}
	total := len(got[0]) + len(got[1])
	if total != 4 {
		t.Fatalf("%d tasks assigned, want 4: %v", total, got)
	}
}

func TestAssignMoreMembersThanTasks(t *testing.T) {
	tasks := tasksOf(2)
	ms := members(5, 1)
	got := assignTasks(tasks, ms)
	checkBalanced(t, tasks, ms, got)
}

// Random scenarios: always a valid, balanced assignment.
func TestAssignRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		parts := make([]int32, 1+r.IntN(4))
		for j := range parts {
			parts[j] = int32(1 + r.IntN(9))
		}
		tasks := tasksOf(parts...)
		ms := members(1+r.IntN(6), len(parts))
		prev := assignTasks(tasks, members(1+r.IntN(6), len(parts)))
		own(ms, tasks, prev, int32(r.IntN(3)))
		for j := range ms {
			if r.IntN(3) == 0 {
				ms[j].local = []topology.TaskID{tasks[r.IntN(len(tasks))].id}
			}
		}
		checkBalanced(t, tasks, ms, assignTasks(tasks, ms))
	}
}

func TestUserDataRoundTrip(t *testing.T) {
	u := userData{topoHash: 0xdeadbeef12345678, local: []topology.TaskID{{Subtopology: 0, Partition: 3}, {Subtopology: 2, Partition: 100}}}
	got, err := decodeUserData(u.encode())
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("got %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, append(u.encode()[:12:12], 0xff)} {
		if _, err := decodeUserData(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

func FuzzDecodeUserData(f *testing.F) {
	f.Add(userData{topoHash: 1, local: []topology.TaskID{{Subtopology: 1, Partition: 2}}}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUserData(b)
		if err == nil {
			if again, err := decodeUserData(u.encode()); err != nil || !reflect.DeepEqual(again, u) {
				t.Fatalf("re-encoding changed %x", b)
			}
		}
	})
}
