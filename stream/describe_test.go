package stream_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/topology"
)

// TestDescribe checks Describe (Kafka Streams' text format) and Mermaid output of topologies
// declared in testdata/describe with a small script: one statement per line,
//
//	[out[, out...] =] op [stream...] [arg...] [name=NAME] [partitions=N]
//
// where op is a DSL operation on string streams (from, filter, filternot, map, mapvalues,
// flatmap, flatmapvalues, selectkey, peek, foreach, merge, split, repartition, process, to,
// todynamic). Commands: describe, mermaid, errors (the build errors, one per line).
func TestDescribe(t *testing.T) {
	datadriven.RunTest(t, "testdata/describe", func(t *testing.T, td *datadriven.TestData) string {
		b := stream.NewBuilder()
		runScript(t, td, b)
		switch td.Cmd {
		case "describe":
			topo, err := b.Build()
			if err != nil {
				td.Fatalf(t, "build: %v", err)
			}
			return topo.Describe().String()
		case "mermaid":
			return b.Describe().Mermaid()
		case "errors":
			_, err := b.Build()
			if err == nil {
				return "no errors\n"
			}
			return err.Error() + "\n"
		}
		td.Fatalf(t, "unknown command %q", td.Cmd)
		return ""
	})
}

type str = stream.Stream[string, string]

func runScript(t *testing.T, td *datadriven.TestData, b *stream.Builder) {
	vars := map[string]str{}
	tables := map[string]stream.Table[string, int64]{}
	get := func(name string) str {
		s, ok := vars[name]
		if !ok {
			td.Fatalf(t, "unknown stream %q", name)
		}
		return s
	}
	for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var outs []string
		if lhs, rhs, ok := strings.Cut(line, " = "); ok {
			for _, o := range strings.Split(lhs, ",") {
				outs = append(outs, strings.TrimSpace(o))
			}
			line = strings.TrimSpace(rhs)
		}
		fields := strings.Fields(line)
		op, args := fields[0], fields[1:]
		var opts []stream.Option
		var pos []string
		for _, a := range args {
			switch {
			case strings.HasPrefix(a, "name="):
				opts = append(opts, stream.Named(strings.TrimPrefix(a, "name=")))
			case strings.HasPrefix(a, "partitions="):
				n, err := strconv.Atoi(strings.TrimPrefix(a, "partitions="))
				if err != nil {
					td.Fatalf(t, "%s: %v", line, err)
				}
				opts = append(opts, stream.WithPartitions(int32(n)))
			default:
				pos = append(pos, a)
			}
		}
		ident := func(k, v string) (string, error) { return k, nil }
		var result []str
		switch op {
		case "from":
			result = append(result, stream.FromTopics(b, pos, serde.String(), serde.String(), opts...))
		case "filter":
			result = append(result, get(pos[0]).Filter(func(k, v string) bool { return true }, opts...))
		case "filternot":
			result = append(result, get(pos[0]).FilterNot(func(k, v string) bool { return false }, opts...))
		case "map":
			result = append(result, stream.Map(get(pos[0]), func(k, v string) (string, string, error) { return v, k, nil }, opts...))
		case "mapvalues":
			result = append(result, stream.MapValues(get(pos[0]), func(v string) (string, error) { return v, nil }, opts...))
		case "flatmap":
			result = append(result, stream.FlatMap(get(pos[0]), func(k, v string) ([]stream.KeyValue[string, string], error) {
				return []stream.KeyValue[string, string]{stream.KV(k, v)}, nil
			}, opts...))
		case "flatmapvalues":
			result = append(result, stream.FlatMapValues(get(pos[0]), func(v string) ([]string, error) { return []string{v}, nil }, opts...))
		case "selectkey":
			result = append(result, stream.SelectKey(get(pos[0]), ident, opts...))
		case "peek":
			result = append(result, get(pos[0]).Peek(func(k, v string) {}, opts...))
		case "foreach":
			get(pos[0]).Foreach(func(k, v string) error { return nil }, opts...)
		case "merge":
			var others []str
			for _, p := range pos[1:] {
				others = append(others, get(p))
			}
			result = append(result, get(pos[0]).Merge(others, opts...))
		case "split":
			sp := get(pos[0]).Split(opts...)
			for _, br := range pos[1:] {
				if d, ok := strings.CutPrefix(br, "default:"); ok {
					result = append(result, sp.Default(d))
				} else {
					result = append(result, sp.Branch(br, func(k, v string) bool { return k == br }))
				}
			}
		case "repartition":
			s := get(pos[0])
			if len(pos) > 1 && pos[1] == "noserdes" {
				s = stream.MapValues(s, func(v string) (string, error) { return v, nil })
			}
			result = append(result, s.Repartition(opts...))
		case "process":
			result = append(result, stream.Process(get(pos[0]), topology.ProcessorFunc(
				func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
					return ctx.Forward(r)
				}), opts...))
		case "groupbycount", "count":
			var g stream.Grouped[string, string]
			if op == "count" {
				g = stream.GroupByKey(get(pos[0]))
			} else {
				g = stream.GroupBy(get(pos[0]), func(k, v string) (string, error) { return v, nil }, serde.String())
			}
			var copts []stream.Option
			for _, a := range pos[1:] {
				if s, ok := strings.CutPrefix(a, "store:"); ok {
					copts = append(copts, stream.Materialized(s))
				}
			}
			tables[outs[0]] = stream.Count(g, copts...)
			continue
		case "tostream":
			t := tables[pos[0]]
			tables[pos[0]] = t
			s := t.ToStream()
			result = append(result, stream.MapValues(s, func(n int64) (string, error) { return strconv.FormatInt(n, 10), nil }, stream.WithValueSerde(serde.String())))
		case "windowcount":
			wt := stream.CountWindows(stream.WindowedBy(stream.GroupByKey(get(pos[0])), stream.Tumbling(time.Minute)), opts...)
			wt.ToStream().To(pos[1], stream.TimeWindowedSerde(serde.String(), time.Minute), serde.Int64())
		case "sessioncount":
			st := stream.CountSessions(stream.SessionWindowedBy(stream.GroupByKey(get(pos[0])), stream.Sessions(time.Minute)), opts...)
			st.ToStream().To(pos[1], stream.SessionWindowedSerde(serde.String()), serde.Int64())
		case "tablestreamto":
			tables[pos[0]].ToStream().To(pos[1], serde.String(), serde.Int64(), opts...)
		case "to":
			get(pos[0]).To(pos[1], serde.String(), serde.String(), opts...)
		case "todynamic":
			get(pos[0]).ToDynamic(func(r topology.Record[string, string]) (string, error) { return r.Key, nil }, pos[1], serde.String(), serde.String(), opts...)
		default:
			td.Fatalf(t, "unknown op %q", op)
		}
		if len(outs) != len(result) {
			td.Fatalf(t, "%s: %d results for %d names", line, len(result), len(outs))
		}
		for i, o := range outs {
			vars[o] = result[i]
		}
	}
}
