package main

import (
	"reflect"
	"testing"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/streamtest"
)

// The whole router tested without a broker.
func TestRouter(t *testing.T) {
	d := streamtest.New(t, Build(DefaultTopics), streamtest.Partitions(3))
	events := streamtest.Input(d, "events", serde.String(), serde.JSON[Event]())
	events.Pipe("ann", Event{User: "ann", Type: "purchase", AmountCents: 1299})
	events.Pipe("bot-7", Event{User: "bot-7", Type: "purchase", AmountCents: 1})
	events.Pipe("bob", Event{User: "bob", Type: "click", Page: "/home"})
	events.Pipe("cid", Event{User: "cid", Type: "view", Page: "/faq"})

	read := func(topic string) []string {
		var users []string
		for _, kv := range streamtest.Output(d, topic, serde.String(), serde.JSON[Event]()).ReadKeyValues() {
			users = append(users, kv.Key+":"+kv.Value.Type)
		}
		return users
	}
	if got := read("purchases"); !reflect.DeepEqual(got, []string{"ann:purchase"}) {
		t.Errorf("purchases: %v", got)
	}
	if got := read("clicks"); !reflect.DeepEqual(got, []string{"bob:click"}) {
		t.Errorf("clicks: %v", got)
	}
	if got := read("other-events"); !reflect.DeepEqual(got, []string{"cid:view"}) {
		t.Errorf("other-events: %v", got)
	}
}
