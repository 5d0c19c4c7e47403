package nexmark

import "github.com/rifflestream/riffle/internal/murmur2"

// Partition returns the partition Kafka's default partitioner gives a record with this key among
// n partitions (murmur2 of the key, made positive, modulo n). The loader places every event with
// it, so expected results per partition can be computed without a broker.
func Partition(key []byte, n int32) int32 { return murmur2.Partition(key, n) }
