package engine

import (
	"context"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger routes franz-go's logs to slog. franz-go is chatty at info; Riffle passes on warnings
// and errors.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
		if rejoining(msg, keyvals) {
			l = slog.LevelWarn
		}
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, "kafka client: "+msg, keyvals...)
}

// maxQuietRejoins is how many consecutive group errors of the kind a member recovers from by
// rejoining are logged as warnings; from the next one on they are errors again, since a member
// that cannot rejoin is a problem someone must look at.
const maxQuietRejoins = 3

// rejoining reports whether franz-go's error log is its group loop saying the member was dropped
// from the group (its session timed out, say, on a loaded machine) and is rejoining. franz-go logs
// that at error level, but nothing is lost: the engine treats it as a lost assignment (under
// exactly-once it aborts the open transaction) and the member rejoins with a fresh id.
func rejoining(msg string, keyvals []any) bool {
	if msg != "group manage loop errored" {
		return false
	}
	var err error
	consecutive := 0
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch keyvals[i] {
		case "err":
			err, _ = keyvals[i+1].(error)
		case "consecutive_errors":
			consecutive, _ = keyvals[i+1].(int)
		}
	}
	if err == nil || consecutive > maxQuietRejoins {
		return false
	}
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.RebalanceInProgress)
}
