// Package kafkatest gives tests a Kafka to talk to.
//
// Brokers returns a real Apache Kafka broker, found in this order:
//
//  1. KAFKA_BROKERS, when set (comma-separated host:port list): used as is, never stopped;
//  2. Apache Kafka from Maven Central jars, started with tools/kafka/kafka.sh (needs Java 17+,
//     and Maven for the first fetch); one broker per test process, started on first use;
//  3. the official apache/kafka image through testcontainers-go, where a Docker engine answers;
//  4. otherwise the test is skipped with one line saying how to get Kafka. Under CI=true that
//     skip is a failure: CI must never pass by skipping the integration suite.
//
// NewCluster starts a three-node KRaft cluster (always through kafka.sh) whose nodes a fault test
// can kill, restart, pause and resume. Fake gives unit tests franz-go's in-process kfake cluster;
// kfake is not Kafka (it compacts differently, accepts any topic config, has no replication), so
// it never stands in for the real broker in integration tests.
//
// A package that uses Brokers or NewCluster must run its tests through Main, so what it started
// is stopped when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
package kafkatest
