package stream_test

import "github.com/twmb/franz-go/pkg/kfake"

func kfakeSeed(topic string, partitions int32) kfake.Opt { return kfake.SeedTopics(partitions, topic) }
