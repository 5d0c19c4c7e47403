package kafkatest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Cluster is a three-node KRaft cluster on 127.0.0.1 (internal topics with RF 3 and min ISR 2)
// whose nodes a fault test can kill, restart, pause and resume. Nodes are numbered 1 to 3.
type Cluster struct {
	r *run
}

var (
	clusterMu sync.Mutex
	cluster   *Cluster
)

// NewCluster returns the process's three-node cluster, starting it on first use through
// tools/kafka/kafka.sh (a cluster whose nodes can be killed cannot come from KAFKA_BROKERS).
// It skips the test when Java is missing, and fails it under CI=true.
//
// The cluster is shared by the tests of one process: a test that kills or pauses a node must
// leave every node running again when it ends (RestartNode, ResumeNode).
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the 3-node Kafka cluster; skipped under -short")
	}
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if cluster != nil {
		return cluster
	}
	s, ok := findScript()
	if !ok || !s.usable() {
		if InCI() {
			t.Fatalf("kafkatest: CI=true and the 3-node cluster needs Java 17+ and Maven (tools/kafka/kafka.sh)")
		}
		t.Skip("the 3-node cluster needs Java 17+ and Maven (tools/kafka/kafka.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := s.start(ctx, "cluster", true)
	if err != nil {
		t.Fatalf("kafkatest: starting the 3-node cluster: %v", err)
	}
	cluster = &Cluster{r: r}
	addStopper(func() {
		clusterMu.Lock()
		cluster = nil
		clusterMu.Unlock()
		r.stop()
	})
	return cluster
}

// Brokers returns the bootstrap addresses of all three nodes.
func (c *Cluster) Brokers() []string { return c.r.addrs }

// NodeAddr returns the address of node n (1-based).
func (c *Cluster) NodeAddr(n int) string { return c.r.addrs[n-1] }

// KillNode kills node n with SIGKILL and returns once it is gone.
func (c *Cluster) KillNode(t testing.TB, n int) { c.do(t, "kill-node", n) }

// RestartNode starts node n again on its data and returns once it serves requests.
func (c *Cluster) RestartNode(t testing.TB, n int) { c.do(t, "restart-node", n) }

// PauseNode stops node n with SIGSTOP: it keeps its sockets but answers nothing.
func (c *Cluster) PauseNode(t testing.TB, n int) { c.do(t, "pause-node", n) }

// ResumeNode continues a paused node with SIGCONT.
func (c *Cluster) ResumeNode(t testing.TB, n int) { c.do(t, "resume-node", n) }

func (c *Cluster) do(t testing.TB, verb string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.r.node(ctx, verb, n); err != nil {
		t.Fatalf("kafkatest: %s %d: %v", verb, n, err)
	}
}
