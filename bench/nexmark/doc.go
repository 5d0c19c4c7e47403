// Package nexmark generates the Nexmark auction events the Riffle benchmarks run on, and encodes
// them in the compact binary format that the Go and Java systems under test share (FORMAT.md).
//
// The generator follows the Nexmark reference generator (Apache Beam's and the nexmark/nexmark
// project's GeneratorConfig and NexmarkGenerator): people, auctions and bids in proportions
// 1:3:46, ids assigned from the event number so that bids mostly refer to auctions and people
// that already exist, half the bids on a "hot" auction and three quarters by a "hot" bidder,
// prices round(10^(6u) * 100) cents, and event times advanced from a fixed base time by a fixed
// inter-event delay. It is seeded: the same Config and the same number of events give the same
// events, byte for byte, on every run and machine.
//
//	gen, err := nexmark.NewGenerator(nexmark.DefaultConfig())
//	if err != nil { ... }
//	var ev nexmark.Event
//	var buf []byte
//	for range 1000 {
//		gen.Next(&ev)
//		buf = nexmark.Append(buf[:0], &ev)
//		key := nexmark.AppendKey(nil, &ev) // bids: the auction id; others: their own id
//		_ = key // produce (key, buf) with timestamp ev.Time()
//	}
//
// Differences from the reference, all deliberate: random numbers come from math/rand/v2's PCG
// seeded by Config.Seed (not SplittableRandom), so the values differ from a Java run while the
// distributions are the same; a random long below n is uniform (the reference's fallback for
// n >= 2^31 is skewed); and a bid's bidder id gets FIRST_PERSON_ID added once (the Flink port
// adds it twice).
package nexmark
