// Package integration holds Riffle's tests against real Apache Kafka: the harness checks that
// prove the broker is real, the engine, state and exactly-once suites, and the fault-injection
// suite. Brokers come from internal/kafkatest (KAFKA_BROKERS, then tools/kafka/kafka.sh, then
// Docker); `make test` starts one broker for the whole run.
package integration
