package engine

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The polled-vs-processed safety net: a partition is in order when its task processed up to its
// polled position, or when nothing of it was processed and it sits where the last rewind put it.
func TestPolledGaps(t *testing.T) {
	at := func(o int64) kgo.EpochOffset { return kgo.EpochOffset{Epoch: 3, Offset: o} }
	cases := []struct {
		name      string
		polled    map[string]map[int32]kgo.EpochOffset
		processed map[topicPartition]int64
		rewound   map[topicPartition]int64
		want      []string
	}{
		{
			name:      "processed to the polled position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(10), 1: at(7)}},
			processed: map[topicPartition]int64{{"in", 0}: 10, {"in", 1}: 7},
		},
		{
			name:      "processed short of the polled position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(10)}},
			processed: map[topicPartition]int64{{"in", 0}: 8},
			want:      []string{"in[0] polled to 10, processed to 8"},
		},
		{
			name:   "polled, nothing processed, no rewind",
			polled: map[string]map[int32]kgo.EpochOffset{"in": {2: at(5)}},
			want:   []string{"in[2] polled to 5, nothing processed since the task started"},
		},
		{
			// After an abort: franz-go reports the rewound position as uncommitted; the rebuilt
			// task has processed nothing since (nothing new, or it is still restoring).
			name:    "sits at its rewound position, nothing processed",
			polled:  map[string]map[int32]kgo.EpochOffset{"in": {0: at(40), 1: at(0)}},
			rewound: map[topicPartition]int64{{"in", 0}: 40, {"in", 1}: 0},
		},
		{
			name:    "polled past its rewound position, nothing processed",
			polled:  map[string]map[int32]kgo.EpochOffset{"in": {0: at(45)}},
			rewound: map[topicPartition]int64{{"in", 0}: 40},
			want:    []string{"in[0] polled to 45, nothing processed since the task started"},
		},
		{
			name:      "rewound, then processed short of the polled position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(45)}},
			processed: map[topicPartition]int64{{"in", 0}: 43},
			rewound:   map[topicPartition]int64{{"in", 0}: 40},
			want:      []string{"in[0] polled to 45, processed to 43"},
		},
		{
			// A processed offset is the truth: a rewound position equal to the polled one does
			// not excuse a task that processed elsewhere.
			name:      "processed elsewhere than a matching rewound position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(40)}},
			processed: map[topicPartition]int64{{"in", 0}: 38},
			rewound:   map[topicPartition]int64{{"in", 0}: 40},
			want:      []string{"in[0] polled to 40, processed to 38"},
		},
		{
			name:    "a rewind of another partition excuses nothing",
			polled:  map[string]map[int32]kgo.EpochOffset{"in": {1: at(40)}, "rep": {0: at(40)}},
			rewound: map[topicPartition]int64{{"in", 0}: 40},
			want: []string{"in[1] polled to 40, nothing processed since the task started",
				"rep[0] polled to 40, nothing processed since the task started"},
		},
	}
	for _, c := range cases {
		got := polledGaps(c.polled, c.processed, c.rewound)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
