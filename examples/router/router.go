package main

import (
	"strings"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// Event is one user event, as JSON on the input topic, keyed by user.
type Event struct {
	User        string `json:"user"`
	Type        string `json:"type"` // "purchase", "click", "view", ...
	AmountCents int64  `json:"amount_cents,omitempty"`
	Page        string `json:"page,omitempty"`
}

// Topics names the example's topics.
type Topics struct {
	Events, Purchases, Clicks, Other string
}

// DefaultTopics are the topics the example uses.
var DefaultTopics = Topics{Events: "events", Purchases: "purchases", Clicks: "clicks", Other: "other-events"}

// Build declares the router: parse JSON events (the deserialization handler decides about bad
// ones), drop bots, and route purchases, clicks and everything else to their own topics.
func Build(t Topics) *stream.Builder {
	b := stream.NewBuilder()
	events := stream.From(b, t.Events, serde.String(), serde.JSON[Event](), stream.Named("events"))
	humans := events.FilterNot(func(user string, e Event) bool { return strings.HasPrefix(e.User, "bot-") }, stream.Named("drop-bots"))
	byType := humans.Split(stream.Named("by-type-"))
	byType.Branch("purchase", func(_ string, e Event) bool { return e.Type == "purchase" }).To(t.Purchases, nil, nil)
	byType.Branch("click", func(_ string, e Event) bool { return e.Type == "click" }).To(t.Clicks, nil, nil)
	byType.Default("other").To(t.Other, nil, nil)
	return b
}
