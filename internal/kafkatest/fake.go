package kafkatest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Fake starts franz-go's in-process kfake cluster for a unit test and closes it when the test
// ends. It returns the cluster (for fault injection and inspection) and its bootstrap addresses.
//
// kfake is fast and deterministic but it is not Kafka: it compacts differently, accepts any topic
// config, and has no replication. Use it for unit tests and quick starts; prove behaviour against
// the real broker (Brokers, NewCluster) in integration tests.
func Fake(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}
