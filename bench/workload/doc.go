// Package workload defines the benchmark's workloads (bench/WORKLOADS.md) for the Go side: their
// names, the client settings every system shares, the per-record functions each system must
// compute identically (the euro conversion, the q2 filter, the output encodings), and the oracle
// that checks a system's output against results computed from the generated events.
//
//	exp := workload.NewExpected(partitions, workload.All...)
//	for each loaded event ev in partition p: exp.Observe(&ev, p)
//	v := exp.Verifier(workload.Q1)
//	for each output record r: v.Add(r.Key, r.Value, r.Headers...)
//	verdict := v.Verdict() // verdict.OK, verdict.Problems
package workload
