package state

// Option configures a store.
type Option func(*options)

type options struct {
	memory           bool
	caching          bool
	changelog        bool
	changelogConfigs map[string]string
	bufferBytes      int
}

func defaultOptions() options {
	return options{caching: true, changelog: true, bufferBytes: DefaultBufferBytes}
}

// DefaultBufferBytes is a store's default write buffer per task: when its buffered writes pass
// it, the task commits early.
const DefaultBufferBytes = 4 << 20

// InMemory keeps the store in memory instead of Pebble: a restarted instance restores it fully
// from its changelog. Kafka Streams' Stores.inMemoryKeyValueStore.
func InMemory() Option { return func(o *options) { o.memory = true } }

// WithCaching sets whether writes are cached until the commit, so only the last write of each key
// per commit goes to the changelog and downstream (default true). Kafka Streams' withCachingEnabled.
func WithCaching(on bool) Option { return func(o *options) { o.caching = on } }

// WithChangelog sets whether the store has a changelog topic (default true). Without one the
// store is not fault tolerant: a task that moves or crashes starts from empty state. Kafka
// Streams' withLoggingEnabled/Disabled.
func WithChangelog(on bool) Option { return func(o *options) { o.changelog = on } }

// ChangelogConfig sets a config of the changelog topic (e.g. "min.compaction.lag.ms").
func ChangelogConfig(key, value string) Option {
	return func(o *options) {
		if o.changelogConfigs == nil {
			o.changelogConfigs = map[string]string{}
		}
		o.changelogConfigs[key] = value
	}
}

// BufferBytes sets the store's write buffer per task (default DefaultBufferBytes). A full buffer
// makes the task commit early. Kafka Streams' statestore.cache.max.bytes, per store and task.
func BufferBytes(n int) Option { return func(o *options) { o.bufferBytes = n } }
