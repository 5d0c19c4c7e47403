package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/stream"
)

// The fault suite: one driver for both processing guarantees (Kafka Streams' EOS system test is the
// model). A generator writes, per key, the integers base..base+m-1 in shuffled order, interleaved
// over the keys; the app under test (integration/testapp -mode fault) echoes every record and keeps
// per key the running count, sum, min and max (caching off: one output per input). Three
// instances run as subprocesses and are SIGKILLed and restarted over and over, one is frozen
// (SIGSTOP) past its session timeout and thawed (a zombie), the app scales 1 -> 3 -> 1, and a
// broker of the 3-node cluster is killed and restarted mid-run. A read_committed verifier then
// recomputes every expected output from the input.
//
// `make test` runs the short version. The long one (more records, kills and broker bounces):
//
//	RIFFLE_FAULT_LONG=1 go test ./integration -run TestFaultSuite -v -timeout 60m
//
// or set RIFFLE_FAULT_RECORDS, RIFFLE_FAULT_KILLS, RIFFLE_FAULT_BOUNCES, RIFFLE_FAULT_SECONDS.
// Each run prints one line (also appended to $RIFFLE_REPORT, which `make test` prints):
//
//	fault-suite guarantee=<g> inline=<bool> processed_inline=<n> records=<n> kills=<n> broker_bounces=<n> lost=<n> duplicated=<n> ...

type faultConfig struct {
	guarantee string // exactly_once or at_least_once
	// inline runs the app with its stateless tasks on the poll loop (testapp -inline,
	// stream.InlineStatelessTasks; at-least-once only): the fault app's first sub-topology
	// (echo, and the repartition) is stateless, its second (the aggregate) keeps its goroutines.
	inline  bool
	records int
	keys    int
	kills   int
	bounces int
	spread  time.Duration // how long the generator takes
}

func faultConfigFor(guarantee string) faultConfig {
	c := faultConfig{guarantee: guarantee, records: 20_000, keys: 400, kills: 10, bounces: 1, spread: 40 * time.Second}
	if os.Getenv("RIFFLE_FAULT_LONG") != "" {
		c = faultConfig{guarantee: guarantee, records: 300_000, keys: 3000, kills: 40, bounces: 3, spread: 6 * time.Minute}
	}
	envInt := func(name string, into *int) {
		if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
			*into = v
		}
	}
	envInt("RIFFLE_FAULT_RECORDS", &c.records)
	envInt("RIFFLE_FAULT_KILLS", &c.kills)
	envInt("RIFFLE_FAULT_BOUNCES", &c.bounces)
	secs := 0
	envInt("RIFFLE_FAULT_SECONDS", &secs)
	if secs > 0 {
		c.spread = time.Duration(secs) * time.Second
	}
	if c.keys > c.records {
		c.keys = c.records
	}
	return c
}

func TestFaultSuite(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	for _, run := range []struct {
		name, guarantee string
		inline          bool
	}{{"exactly_once", "exactly_once", false}, {"at_least_once", "at_least_once", false}, {"at_least_once_inline", "at_least_once", true}} {
		t.Run(run.name, func(t *testing.T) {
			c := faultConfigFor(run.guarantee)
			c.inline = run.inline
			runFaultSuite(t, cluster, c)
		})
	}
}

// faultInput is what the generator wrote: per key, its values in the order written.
type faultInput struct {
	keys   []string
	values map[string][]int64
	base   map[string]int64
}

// genFaultInput builds the records: key i gets base_i..base_i+m_i-1 shuffled; the keys' sequences
// are interleaved at random (each key's order kept).
func genFaultInput(c faultConfig, rng *rand.Rand) (faultInput, [][2]string) {
	in := faultInput{values: map[string][]int64{}, base: map[string]int64{}}
	perKey := make([][]int64, c.keys)
	var picks []int
	for i := 0; i < c.keys; i++ {
		k := fmt.Sprintf("k%05d", i)
		in.keys = append(in.keys, k)
		m := c.records / c.keys
		if i < c.records%c.keys {
			m++
		}
		base := int64(i)*1_000_000 + 1
		in.base[k] = base
		vals := make([]int64, m)
		for j := range vals {
			vals[j] = base + int64(j)
		}
		rng.Shuffle(len(vals), func(a, b int) { vals[a], vals[b] = vals[b], vals[a] })
		perKey[i] = vals
		in.values[k] = vals
		for range vals {
			picks = append(picks, i)
		}
	}
	rng.Shuffle(len(picks), func(a, b int) { picks[a], picks[b] = picks[b], picks[a] })
	next := make([]int, c.keys)
	order := make([][2]string, 0, len(picks))
	for _, i := range picks {
		order = append(order, [2]string{in.keys[i], strconv.FormatInt(perKey[i][next[i]], 10)})
		next[i]++
	}
	return in, order
}

// faultAgg is testapp's aggregate output.
type faultAgg struct {
	Count int64 `json:"count"`
	Sum   int64 `json:"sum"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
	Last  int64 `json:"last"`
}

// faultFleet runs the app's instances as subprocesses and restarts any that exit on their own
// (as a supervisor would).
type faultFleet struct {
	t       *testing.T
	args    []string
	mu      sync.Mutex
	dirs    map[string]string
	running map[string]*proc
	lives   []*proc
	// exits records instances that exited on their own, with their last log lines.
	exits []string
	wg    sync.WaitGroup
}

// record returns, under the fleet's lock, the processes it started (restarts included) and the
// exits of instances that stopped on their own: a restart of such an instance appends to both
// from a timer's goroutine.
func (f *faultFleet) record() (lives []*proc, exits []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lives), slices.Clone(f.exits)
}

// life returns the i-th process the fleet started.
func (f *faultFleet) life(i int) *proc {
	lives, _ := f.record()
	return lives[i]
}

func (f *faultFleet) start(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startLocked(name)
}

func (f *faultFleet) startLocked(name string) {
	if f.dirs[name] == "" {
		f.dirs[name] = f.t.TempDir()
	}
	p := startProc(f.t, name, append([]string{"-state-dir", f.dirs[name]}, f.args...)...)
	f.running[name] = p
	f.lives = append(f.lives, p)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		err := <-p.done
		p.done <- err
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.running[name] != p {
			return // killed or stopped on purpose
		}
		b, _ := os.ReadFile(p.log.Name())
		f.exits = append(f.exits, fmt.Sprintf("%s exited on its own (%v):\n%s", name, err, tail(string(b), 8)))
		delete(f.running, name)
		time.AfterFunc(time.Second, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.running[name]; !ok && f.dirs[name] != "" && !f.t.Failed() {
				f.startLocked(name)
			}
		})
	}()
}

func (f *faultFleet) take(name string) *proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.running[name]
	delete(f.running, name)
	return p
}

func (f *faultFleet) kill(name string) bool {
	p := f.take(name)
	if p == nil {
		return false
	}
	p.kill()
	return true
}

func (f *faultFleet) stop(name string) {
	if p := f.take(name); p != nil {
		p.stop(f.t)
	}
	f.mu.Lock()
	delete(f.dirs, name) // not restarted any more
	f.mu.Unlock()
}

func (f *faultFleet) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.running {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *faultFleet) signal(name string, sig syscall.Signal) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.running[name]
	if p == nil {
		return false
	}
	return p.cmd.Process.Signal(sig) == nil
}

func runFaultSuite(t *testing.T, cluster *kafkatest.Cluster, c faultConfig) {
	brokers := cluster.Brokers()
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("RIFFLE_FAULT_SEED"), 10, 64); err == nil {
		seed = v // to replay a failing run's schedule of faults (their timing still varies)
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("fault suite %+v, seed %d", c, seed)
	adm := kafkatest.Admin(t, brokers)
	app, in, outEcho, outAgg := kafkatest.Name(t, "app"), kafkatest.Name(t, "in"), kafkatest.Name(t, "echo"), kafkatest.Name(t, "agg")
	minISR := map[string]*string{"min.insync.replicas": kafkatest.StringPtr("2")}
	for _, topic := range []string{in, outEcho, outAgg} {
		kafkatest.CreateTopic(t, adm, topic, 6, 3, minISR)
	}
	input, order := genFaultInput(c, rng)

	fleet := &faultFleet{t: t, dirs: map[string]string{}, running: map[string]*proc{},
		args: []string{"-mode", "fault", "-guarantee", c.guarantee, "-brokers", strings.Join(brokers, ","),
			"-app-id", app, "-input", in, "-output", outEcho, "-output-agg", outAgg,
			"-session-timeout", "6s", "-metrics-every", "500ms"}}
	if c.inline {
		fleet.args = append(fleet.args, "-inline")
	}
	defer func() {
		for _, n := range fleet.names() {
			fleet.kill(n)
		}
	}()

	// The generator: paced over c.spread, idempotent, acks=all.
	genDone := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(in), kgo.ProducerLinger(5*time.Millisecond),
			kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
		if err != nil {
			genDone <- err
			return
		}
		defer cl.Close()
		start := time.Now()
		var firstErr error
		var mu sync.Mutex
		for i, kv := range order {
			if due := start.Add(time.Duration(int64(c.spread) * int64(i) / int64(len(order)))); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
			v, _ := strconv.ParseInt(kv[1], 10, 64)
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(kv[0]), Value: i64(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
		}
		if err := cl.Flush(context.Background()); err != nil {
			genDone <- err
			return
		}
		mu.Lock()
		defer mu.Unlock()
		genDone <- firstErr
	}()

	// The choreography, against the generator's clock.
	t0 := time.Now()
	at := func(frac float64) { time.Sleep(time.Until(t0.Add(time.Duration(frac * float64(c.spread))))) }
	fleet.start("i0")
	kills, bounces, pauses := 0, 0, 0
	// One kill while the app runs on one instance, the rest on three.
	at(0.08)
	if c.kills > 0 && fleet.kill("i0") {
		kills++
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		fleet.start("i0")
	}
	at(0.15)
	fleet.start("i1")
	fleet.start("i2")

	var bounceWG sync.WaitGroup
	bounceAt := map[int]bool{}
	for b := 0; b < c.bounces; b++ {
		bounceAt[1+(b+1)*(c.kills-1)/(c.bounces+1)] = true
	}
	pauseAt := c.kills / 3
	for k := 1; k < c.kills; k++ {
		at(0.25 + 0.7*float64(k)/float64(c.kills))
		if bounceAt[k] {
			node := 1 + rng.IntN(3)
			bounces++
			bounceWG.Add(1)
			go func() {
				defer bounceWG.Done()
				cluster.KillNode(t, node)
				time.Sleep(5 * time.Second)
				cluster.RestartNode(t, node)
			}()
		}
		if k == pauseAt {
			// A zombie: frozen past its session timeout, its tasks move; thawed, it must not
			// commit anything for them (it rejoins, or exits if its producer was fenced).
			names := fleet.names()
			if len(names) > 1 {
				victim := names[rng.IntN(len(names))]
				if fleet.signal(victim, syscall.SIGSTOP) {
					pauses++
					go func() {
						time.Sleep(8 * time.Second)
						fleet.signal(victim, syscall.SIGCONT)
					}()
				}
			}
		}
		names := fleet.names()
		if len(names) == 0 {
			continue
		}
		victim := names[rng.IntN(len(names))]
		if fleet.kill(victim) {
			kills++
			time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
			fleet.start(victim)
		}
	}
	if err := <-genDone; err != nil {
		t.Fatalf("generator: %v", err)
	}
	bounceWG.Wait()
	time.Sleep(9 * time.Second) // any frozen instance is thawed
	// Scale 3 -> 1: two instances leave cleanly.
	fleet.stop("i1")
	fleet.stop("i2")

	// Wait until both outputs cover every input, then stop the last instance.
	waitFor(t, "the outputs to cover every input", 4*time.Minute, func() bool {
		echoes := kafkatest.ReadAll(t, brokers, outEcho, true)
		aggs := kafkatest.ReadAll(t, brokers, outAgg, true)
		return coveredEcho(input, echoes) == c.records && coveredAgg(input, aggs) == c.records
	})
	fleet.stop("i0")
	fleet.wg.Wait()

	v := verifyFault(t, brokers, adm, app, in, outEcho, outAgg, input, c.guarantee)
	lives, exits := fleet.record()
	var restored, inlined int64
	for _, p := range lives {
		m := lastMetrics(p)
		v.aborts += int(m.TransactionsAborted)
		restored += m.RecordsRestored
		inlined += m.RecordsProcessedInline
		// The engine's exactly-once safety net (a polled record no task processed) must never
		// fire: it would mean a bug that only the net kept from losing data.
		if b, _ := os.ReadFile(p.log.Name()); strings.Contains(string(b), "past records no task processed") {
			t.Errorf("%s: the engine caught itself about to commit unprocessed records:\n%s", p.name, tail(string(b), 20))
		}
	}
	fenced := 0
	for _, e := range exits {
		if strings.Contains(e, "fenced") {
			fenced++
			continue
		}
		t.Errorf("an instance failed on its own: %s", e)
	}
	if c.inline != (inlined > 0) {
		t.Errorf("%d records processed on the poll loops (in the instances' last metrics), with inline %v", inlined, c.inline)
	}
	line := fmt.Sprintf("fault-suite guarantee=%s inline=%v processed_inline=%d records=%d kills=%d broker_bounces=%d lost=%d duplicated=%d zombies=%d fenced_exits=%d aborted_txns=%d restored=%d overcounted=%d mismatched=%d seconds=%.0f",
		c.guarantee, c.inline, inlined, c.records, kills, bounces, v.lost, v.duplicated, pauses, fenced, v.aborts, restored, v.overcounted, v.mismatched, time.Since(t0).Seconds())
	report(t, line)
	if kills < min(c.kills, 10) {
		t.Errorf("only %d kills happened", kills)
	}
	if v.lost != 0 || v.mismatched != 0 {
		t.Errorf("%d lost, %d mismatched outputs: %s", v.lost, v.mismatched, strings.Join(v.examples, "; "))
		if v.badKey != "" {
			changelogForensics(t, brokers, app, v.badKey, lives)
		}
	}
	if c.guarantee == "exactly_once" && v.duplicated != 0 {
		t.Errorf("exactly-once: %d duplicated outputs: %s", v.duplicated, strings.Join(v.examples, "; "))
	}
}

// coveredEcho counts the inputs that have at least one echo.
func coveredEcho(in faultInput, out []*kgo.Record) int {
	seen := map[string]map[int64]bool{}
	for _, r := range out {
		var e echo
		if json.Unmarshal(r.Value, &e) != nil {
			continue
		}
		k := string(r.Key)
		if seen[k] == nil {
			seen[k] = map[int64]bool{}
		}
		seen[k][e.Seq] = true
	}
	n := 0
	for k, vs := range in.values {
		for _, v := range vs {
			if seen[k][v] {
				n++
			}
		}
	}
	return n
}

// coveredAgg counts the inputs that have at least one aggregate output (by its last value).
func coveredAgg(in faultInput, out []*kgo.Record) int {
	seen := map[string]map[int64]bool{}
	for _, r := range out {
		var a faultAgg
		if json.Unmarshal(r.Value, &a) != nil {
			continue
		}
		k := string(r.Key)
		if seen[k] == nil {
			seen[k] = map[int64]bool{}
		}
		seen[k][a.Last] = true
	}
	n := 0
	for k, vs := range in.values {
		for _, v := range vs {
			if seen[k][v] {
				n++
			}
		}
	}
	return n
}

type faultVerdict struct {
	lost, duplicated, mismatched int
	aborts                       int
	overcounted                  int // at-least-once: records counted twice in the final aggregates
	examples                     []string
	// badKey is the first key with a mismatched aggregate (exactly-once), for changelogForensics.
	badKey string
}

func (v *faultVerdict) note(format string, args ...any) {
	if len(v.examples) < 8 {
		v.examples = append(v.examples, fmt.Sprintf(format, args...))
	}
}

// verifyFault is the read_committed verifier.
func verifyFault(t *testing.T, brokers []string, adm *kadm.Client, app, in, outEcho, outAgg string, input faultInput, guarantee string) faultVerdict {
	t.Helper()
	ctx := context.Background()
	var v faultVerdict

	// No transaction of the app is left open, and the group is empty.
	if guarantee == "exactly_once" {
		listed, err := adm.ListTransactions(ctx, nil, nil)
		if err != nil {
			t.Fatalf("listing transactions: %v", err)
		}
		for id, tx := range listed {
			if strings.HasPrefix(id, app+"-") {
				switch tx.State {
				case "Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
					t.Errorf("transaction %s is left %s", id, tx.State)
				}
			}
		}
	}
	groups, err := adm.DescribeGroups(ctx, app)
	if err != nil {
		t.Fatalf("describing group %s: %v", app, err)
	}
	if g := groups[app]; g.State != "Empty" || len(g.Members) != 0 {
		t.Errorf("group %s is %s with %d members after every instance stopped", app, g.State, len(g.Members))
	}

	// The input as Kafka has it, per key in order: what the app saw.
	got := map[string][]int64{}
	for _, r := range kafkatest.ReadAll(t, brokers, in, true) {
		got[string(r.Key)] = append(got[string(r.Key)], int64(beUint64(r.Value)))
	}
	for _, k := range input.keys {
		if fmt.Sprint(got[k]) != fmt.Sprint(input.values[k]) {
			t.Fatalf("the input topic does not hold what the generator wrote for key %s (%d vs %d values)", k, len(got[k]), len(input.values[k]))
		}
	}

	// Echo: each input once (exactly-once, in order) or at least once.
	echoes := map[string][]int64{}
	for _, r := range kafkatest.ReadAll(t, brokers, outEcho, true) {
		var e echo
		if err := json.Unmarshal(r.Value, &e); err != nil {
			v.mismatched++
			v.note("undecodable echo %q", r.Value)
			continue
		}
		echoes[string(r.Key)] = append(echoes[string(r.Key)], e.Seq)
	}
	for _, k := range input.keys {
		want := input.values[k]
		seen := map[int64]int{}
		for _, s := range echoes[k] {
			seen[s]++
		}
		for _, x := range want {
			switch n := seen[x]; {
			case n == 0:
				v.lost++
				v.note("echo of %s=%d missing", k, x)
			case n > 1:
				v.duplicated += n - 1
			}
			delete(seen, x)
		}
		for x := range seen {
			v.mismatched++
			v.note("echo of %s=%d was never written", k, x)
		}
		if guarantee == "exactly_once" && len(echoes[k]) == len(want) && fmt.Sprint(echoes[k]) != fmt.Sprint(want) {
			v.mismatched++
			v.note("echoes of %s out of order", k)
		}
	}

	// Aggregates: recomputed from the input, in order per key.
	aggs := map[string][]faultAgg{}
	for _, r := range kafkatest.ReadAll(t, brokers, outAgg, true) {
		var a faultAgg
		if err := json.Unmarshal(r.Value, &a); err != nil {
			v.mismatched++
			v.note("undecodable aggregate %q", r.Value)
			continue
		}
		aggs[string(r.Key)] = append(aggs[string(r.Key)], a)
	}
	for _, k := range input.keys {
		vals := input.values[k]
		prefix := make([]faultAgg, len(vals)) // prefix[i]: the aggregate after vals[0..i]
		pos := map[int64]int{}
		var acc faultAgg
		for i, x := range vals {
			if acc.Count == 0 || x < acc.Min {
				acc.Min = x
			}
			if acc.Count == 0 || x > acc.Max {
				acc.Max = x
			}
			acc.Count++
			acc.Sum += x
			acc.Last = x
			prefix[i] = acc
			pos[x] = i
		}
		// Closed form of the final aggregate: count m, sum m*base + m(m-1)/2, min base, max base+m-1.
		m, base := int64(len(vals)), input.base[k]
		if final := prefix[len(vals)-1]; final != (faultAgg{Count: m, Sum: m*base + m*(m-1)/2, Min: base, Max: base + m - 1, Last: vals[len(vals)-1]}) {
			t.Fatalf("verifier: recomputed final aggregate of %s is %+v, closed form disagrees", k, final)
		}
		got := aggs[k]
		seen := map[int64]int{}
		for i, a := range got {
			p, ok := pos[a.Last]
			if !ok {
				v.mismatched++
				v.note("aggregate of %s ends in %d, never an input", k, a.Last)
				continue
			}
			seen[a.Last]++
			want := prefix[p]
			if guarantee == "exactly_once" {
				if i != p || a != want {
					if v.badKey == "" {
						v.badKey = k
					}
					v.mismatched++
					v.note("aggregate #%d of %s is %+v, want #%d %+v", i, k, a, p, want)
				}
				continue
			}
			// At-least-once: after a crash the store (restored from its changelog) can be ahead of
			// the committed input offset, so replayed records are counted again on top of later
			// ones. An output covers at least its prefix of the input, never less.
			if a.Min > want.Min || a.Max < want.Max || a.Count < want.Count || a.Sum < want.Sum {
				v.mismatched++
				v.note("aggregate of %s after %d is %+v, want at least %+v", k, a.Last, a, want)
			}
		}
		if guarantee != "exactly_once" && len(got) > 0 {
			// The last aggregate has seen every value: min and max exact, count and sum at least.
			final, want := got[len(got)-1], prefix[len(vals)-1]
			if final.Min != want.Min || final.Max != want.Max || final.Count < want.Count || final.Sum < want.Sum {
				v.mismatched++
				v.note("final aggregate of %s is %+v, want %+v (count and sum at least)", k, final, want)
			}
			v.overcounted += int(final.Count - want.Count)
		}
		for _, x := range vals {
			switch n := seen[x]; {
			case n == 0:
				v.lost++
				v.note("aggregate of %s after %d missing", k, x)
			case n > 1:
				v.duplicated += n - 1
			}
		}
	}
	return v
}

// lastMetrics returns the last metrics line an instance's life printed.
func lastMetrics(p *proc) stream.Metrics {
	var m stream.Metrics
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return m
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(lines[i], "metrics "); ok && json.Unmarshal([]byte(rest), &m) == nil {
			return m
		}
	}
	return m
}

func beUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x
}

var reportMu sync.Mutex

// report logs a result line and appends it to $RIFFLE_REPORT (printed by `make test`, since go
// test shows a passing test's log only with -v).
func report(t *testing.T, line string) {
	t.Log(line)
	path := os.Getenv("RIFFLE_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("writing the report: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// Recovery after SIGKILL: how much of a store's changelog the restarted instance reads back.
// Riffle keeps the checkpoint in the same Pebble batch as the state it describes, and under
// exactly-once applies state only after its transaction commits, so local state survives a crash
// and only the changelog's tail after the checkpoint is restored. (Kafka Streams wipes its local
// state after a crash under exactly-once and restores the whole changelog.)
func TestFaultRecovery(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	// Exactly-once at its default; at-least-once at 1s rather than its 30s default, so a commit
	// (and a checkpoint) happens before the kill.
	commitInterval := map[string]string{"exactly_once": "100ms", "at_least_once": "1s"}
	for _, g := range []string{"exactly_once", "at_least_once"} {
		t.Run(g, func(t *testing.T) {
			adm := kafkatest.Admin(t, brokers)
			app, in, outEcho, outAgg := kafkatest.Name(t, "app"), kafkatest.Name(t, "in"), kafkatest.Name(t, "echo"), kafkatest.Name(t, "agg")
			for _, topic := range []string{in, outEcho, outAgg} {
				kafkatest.CreateTopic(t, adm, topic, 4, 1, nil)
			}
			c := faultConfig{guarantee: g, records: 40_000, keys: 4000}
			input, order := genFaultInput(c, rand.New(rand.NewPCG(7, 7)))
			cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(in), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
			produce := func(kvs [][2]string) error {
				for _, kv := range kvs {
					v, _ := strconv.ParseInt(kv[1], 10, 64)
					cl.Produce(context.Background(), &kgo.Record{Key: []byte(kv[0]), Value: i64(v)}, nil)
				}
				return cl.Flush(context.Background())
			}
			fleet := &faultFleet{t: t, dirs: map[string]string{}, running: map[string]*proc{},
				args: []string{"-mode", "fault", "-guarantee", g, "-brokers", strings.Join(brokers, ","),
					"-app-id", app, "-input", in, "-output", outEcho, "-output-agg", outAgg,
					"-session-timeout", "6s", "-metrics-every", "200ms", "-commit-interval", commitInterval[g]}}
			half := len(order) / 2
			if err := produce(order[:half]); err != nil {
				t.Fatal(err)
			}
			fleet.start("a")
			waitFor(t, "the first half to be processed", 2*time.Minute, func() bool {
				return lastMetrics(fleet.life(0)).RecordsProcessed >= int64(2*half) // echo and aggregate
			})
			// Kill while the second half streams in, after some of it is committed: work in flight
			// is lost with the process.
			time.Sleep(1500 * time.Millisecond)
			produced := make(chan error, 1)
			go func() { // paced over about 3s, so the kill lands mid-stream
				rest := order[half:]
				for len(rest) > 0 {
					n := min(len(rest), 1000)
					if err := produce(rest[:n]); err != nil {
						produced <- err
						return
					}
					rest = rest[n:]
					time.Sleep(150 * time.Millisecond)
				}
				produced <- nil
			}()
			waitFor(t, "part of the second half to be processed", 2*time.Minute, func() bool {
				if g == "exactly_once" { // committed, so the checkpoint has moved
					return len(kafkatest.ReadAll(t, brokers, app+"-aggs-changelog", true)) >= half+half/4
				}
				return lastMetrics(fleet.life(0)).RecordsProcessed >= int64(2*(half+half/4))
			})
			fleet.kill("a")
			changelog := kafkatest.ReadAll(t, brokers, app+"-aggs-changelog", true)
			fleet.start("a")
			if err := <-produced; err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the outputs to cover every input", 3*time.Minute, func() bool {
				return coveredAgg(input, kafkatest.ReadAll(t, brokers, outAgg, true)) == c.records &&
					coveredEcho(input, kafkatest.ReadAll(t, brokers, outEcho, true)) == c.records
			})
			restarted := fleet.life(1)
			m := lastMetrics(restarted)
			fleet.stop("a")
			fleet.wg.Wait()
			v := verifyFault(t, brokers, adm, app, in, outEcho, outAgg, input, g)
			keys := map[string]bool{}
			for _, r := range changelog {
				keys[string(r.Key)] = true
			}
			report(t, fmt.Sprintf("fault-recovery guarantee=%s commit_interval=%s store_keys=%d changelog_records=%d restored_after_sigkill=%d (%.1f%% of the changelog) lost=%d duplicated=%d",
				g, commitInterval[g], len(keys), len(changelog), m.RecordsRestored, 100*float64(m.RecordsRestored)/float64(max(1, len(changelog))), v.lost, v.duplicated))
			if v.lost != 0 || v.mismatched != 0 || (g == "exactly_once" && v.duplicated != 0) {
				t.Fatalf("%d lost, %d duplicated, %d mismatched: %v", v.lost, v.duplicated, v.mismatched, v.examples)
			}
			if m.RecordsRestored >= int64(len(changelog)) {
				t.Errorf("the restarted instance restored %d records of a %d-record changelog: its local state was not reused", m.RecordsRestored, len(changelog))
			}
		})
	}
}
