package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// NewApp checks its options and names the one that is wrong; good options make an app.
func TestNewAppChecksOptions(t *testing.T) {
	build := func() *stream.Builder {
		b := stream.NewBuilder()
		stream.From(b, "in", serde.String(), serde.String()).To("out", nil, nil)
		return b
	}
	ok := []stream.AppOption{stream.AppID("opts"), stream.Brokers("127.0.0.1:1")}
	for _, c := range []struct {
		name string
		opts []stream.AppOption
		want string // in the error
	}{
		{"no app id", []stream.AppOption{stream.Brokers("127.0.0.1:1")}, "AppID is required"},
		{"bad app id", []stream.AppOption{stream.AppID("a b"), stream.Brokers("127.0.0.1:1")}, `AppID "a b"`},
		{"no brokers", []stream.AppOption{stream.AppID("opts")}, "Brokers is required"},
		{"commit interval", append(ok, stream.CommitInterval(-time.Second)), "CommitInterval(-1s) must be positive"},
		{"buffered records", append(ok, stream.MaxBufferedRecordsPerPartition(0)), "MaxBufferedRecordsPerPartition(0) must be positive"},
		{"restore concurrency", append(ok, stream.RestoreConcurrency(0)), "RestoreConcurrency(0) must be positive"},
		{"replication", append(ok, stream.ReplicationFactor(0)), "ReplicationFactor(0) must be positive"},
		{"nil option", append(ok, nil), "a nil option"},
		{"inline under exactly-once", append(ok, stream.InlineStatelessTasks(), stream.ProcessingGuarantee(stream.ExactlyOnce)), "InlineStatelessTasks is for at-least-once"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := stream.NewApp(build(), c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewApp: %v; want an error with %q", err, c.want)
			}
		})
	}
	if _, err := stream.NewApp(build(), append(ok, stream.RestoreConcurrency(3), stream.MaxBufferedRecordsPerPartition(100), stream.InlineStatelessTasks())...); err != nil {
		t.Fatalf("NewApp with good options: %v", err)
	}
}
