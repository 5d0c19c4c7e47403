// Package kafka is Riffle's glue to Kafka itself: checking, creating and verifying the topics an
// app needs through the admin API, and an embedded in-process broker for quick starts.
//
// The embedded broker (StartEmbedded) is franz-go's kfake: fast and dependency-free, but not
// Kafka (it compacts differently, accepts any topic config, has no replication). Use it to see an
// app work with zero setup; run on a real broker for anything that matters. Riffle never starts
// one unless you call StartEmbedded.
package kafka
