package topology_test

import (
	"fmt"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// The Processor API: typed node handles let the compiler check what each processor receives.
func Example() {
	t := topology.New()
	src := topology.AddSource(t, "orders", []string{"orders"}, serde.String(), serde.Int64())
	big := topology.AddProcessor(t, "big-orders", topology.ProcessorFunc(
		func(ctx topology.Context[string, int64], rec topology.Record[string, int64]) error {
			if rec.Value < 1000 {
				return nil
			}
			return ctx.Forward(rec)
		}), src)
	topology.AddSink(t, "to-big", "big-orders", serde.String(), serde.Int64(), []topology.Node[string, int64]{big})
	fmt.Print(t.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: orders (topics: [orders])
	//       --> big-orders
	//     Processor: big-orders (stores: [])
	//       --> to-big
	//       <-- orders
	//     Sink: to-big (topic: big-orders)
	//       <-- big-orders
}

// A task is I/O free: records in, emitted records out through a Collector.
func ExamplePlan_NewTask() {
	t := topology.New()
	src := topology.AddSource(t, "in", []string{"in"}, serde.String(), serde.String())
	topology.AddSink(t, "out", "out", serde.String(), serde.String(), []topology.Node[string, string]{src})
	plan, _ := t.Plan("my-app")
	rec := &recorder{}
	task, _ := plan.NewTask(topology.TaskID{Subtopology: 0, Partition: 0}, topology.TaskConfig{Collector: rec})
	_ = task.Init()
	err := task.Process(&topology.RawRecord{Topic: "in", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s -> %s %s=%s\n", task.ID(), rec.out[0].Topic, rec.out[0].Key, rec.out[0].Value)
	// Output:
	// 0_0 -> out k=v
}

// Stateless filter and value mapping nodes: the same as ProcessorFuncs that forward, for less.
func ExampleAddMapValues() {
	t := topology.New()
	src := topology.AddSource(t, "orders", []string{"orders"}, serde.String(), serde.Int64())
	big := topology.AddFilter(t, "big", func(_ string, cents int64) bool { return cents >= 1000 }, src)
	euros := topology.AddMapValues(t, "in-euros", func(_ string, cents int64) (string, error) {
		return fmt.Sprintf("%d.%02d EUR", cents*908/1000/100, cents*908/1000%100), nil
	}, big)
	topology.AddSink(t, "out", "big-orders", serde.String(), serde.String(), []topology.Node[string, string]{euros})
	plan, _ := t.Plan("my-app")
	rec := &recorder{}
	task, _ := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: rec})
	_ = task.Init()
	for i, cents := range []int64{250, 1500, 99999} {
		v, _ := serde.Int64().Serialize("orders", cents)
		_ = task.Process(&topology.RawRecord{Topic: "orders", Offset: int64(i), Key: []byte("o"), Value: v, Timestamp: time.UnixMilli(1)})
	}
	for _, o := range rec.out {
		fmt.Printf("%s=%s\n", o.Key, o.Value)
	}
	// Output:
	// o=13.62 EUR
	// o=907.99 EUR
}
