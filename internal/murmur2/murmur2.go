// Package murmur2 is the hash of Kafka's default partitioner: MurmurHash2 (32-bit, seed
// 0x9747b28c) exactly as org.apache.kafka.common.utils.Utils.murmur2 computes it, so that Riffle
// puts a key in the partition where a Java producer (and franz-go's default partitioner) puts it.
// Co-partitioning and repartition topics depend on that.
//
// Everything here is allocation-free and safe for concurrent use.
package murmur2

import "encoding/binary"

// Hash returns Kafka's Utils.murmur2(data): MurmurHash2 reading data in little-endian 4-byte
// blocks, as a Java int (it may be negative).
func Hash(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// ToPositive returns Kafka's Utils.toPositive(n): n with its sign bit cleared (not its absolute
// value), so that math.MinInt32 gives 0 and -1 gives math.MaxInt32.
func ToPositive(n int32) int32 {
	return n & 0x7fffffff
}

// Partition returns the partition Kafka's default partitioner picks for a record with the
// serialized key key among numPartitions partitions: toPositive(murmur2(key)) % numPartitions
// (BuiltInPartitioner.partitionForKey). An empty key is hashed like any other; a Kafka producer
// hashes no null key (a record without a key goes to a sticky partition), so do not call Partition
// for one. It returns -1 if numPartitions is not positive.
func Partition(key []byte, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return -1
	}
	return ToPositive(Hash(key)) % numPartitions
}
