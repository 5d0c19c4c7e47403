package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKgoLoggerLevels(t *testing.T) {
	for _, c := range []struct {
		name        string
		level       kgo.LogLevel
		msg         string
		err         error
		consecutive int
		want        string
	}{
		{"dropped member rejoins", kgo.LogLevelError, "group manage loop errored", kerr.UnknownMemberID, 1, "WARN"},
		{"wrapped", kgo.LogLevelError, "group manage loop errored", fmt.Errorf("join: %w", kerr.IllegalGeneration), 2, "WARN"},
		{"rebalance in progress", kgo.LogLevelError, "group manage loop errored", kerr.RebalanceInProgress, 3, "WARN"},
		{"cannot rejoin", kgo.LogLevelError, "group manage loop errored", kerr.UnknownMemberID, 4, "ERROR"},
		{"authorization", kgo.LogLevelError, "group manage loop errored", kerr.GroupAuthorizationFailed, 1, "ERROR"},
		{"fenced instance", kgo.LogLevelError, "group manage loop errored", kerr.FencedInstanceID, 1, "ERROR"},
		{"other error", kgo.LogLevelError, "something else", kerr.UnknownMemberID, 1, "ERROR"},
		{"no error value", kgo.LogLevelError, "group manage loop errored", nil, 1, "ERROR"},
		{"warning stays", kgo.LogLevelWarn, "group manage loop errored", errors.New("x"), 1, "WARN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := kgoLogger{slog.New(slog.NewTextHandler(&buf, nil))}
			kv := []any{"group", "g", "consecutive_errors", c.consecutive, "backoff", 0}
			if c.err != nil {
				kv = append(kv, "err", c.err)
			}
			l.Log(c.level, c.msg, kv...)
			if !strings.Contains(buf.String(), "level="+c.want+" ") {
				t.Fatalf("logged %q, want level %s", buf.String(), c.want)
			}
		})
	}
}
