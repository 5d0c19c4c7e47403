package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Embedded is an in-process broker (franz-go's kfake) for quick starts and examples. It is not
// Kafka: use a real broker for anything you rely on.
type Embedded struct {
	c *kfake.Cluster
}

// StartEmbedded starts an in-process broker on a free localhost port. The caller must Close it.
func StartEmbedded() (*Embedded, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("kafka: starting the embedded broker: %w", err)
	}
	return &Embedded{c: c}, nil
}

// Brokers returns the bootstrap addresses.
func (e *Embedded) Brokers() []string { return e.c.ListenAddrs() }

// CreateTopic creates a topic with the given partition count.
func (e *Embedded) CreateTopic(ctx context.Context, name string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("kafka: creating topic %q on the embedded broker: %w", name, err)
	}
	return nil
}

// Close stops the broker; its data is gone.
func (e *Embedded) Close() { e.c.Close() }
