package topology

import (
	"fmt"
	"sort"
	"strings"
)

// Description is a topology's structure: its sub-topologies and their nodes. String renders it in
// Kafka Streams' TopologyDescription format, so people and tools used to that format read it as
// they are used to; Mermaid renders a flowchart.
type Description struct {
	Subtopologies []SubtopologyDescription
	// Err holds the declaration errors, if any; the description then shows what was declared.
	Err error
}

// SubtopologyDescription is one sub-topology. Nodes are in Kafka Streams' order: by the size of
// the sub-graph each node roots (largest first), then by name.
type SubtopologyDescription struct {
	ID    int
	Nodes []NodeDescription
}

// NodeDescription is one node.
type NodeDescription struct {
	Name string
	Kind string // "source", "processor" or "sink"
	// Topics a source reads; Topic a static sink writes; TopicChooser describes a dynamic sink's.
	Topics       []string
	Topic        string
	TopicChooser string
	Stores       []string
	Successors   []string
	Predecessors []string
}

// Describe returns the topology's description. It works on a topology with declaration errors too
// (Err is then set), grouping what was declared.
func (t *Topology) Describe() Description {
	t.mu.Lock()
	c, err := t.analyzeLocked()
	t.mu.Unlock()
	if err != nil {
		// Describe what was declared, as one pseudo-compilation without the checks.
		return Description{Subtopologies: t.describeRaw(), Err: err}
	}
	return Description{Subtopologies: describeSubs(c.subs)}
}

func (t *Topology) describeRaw() []SubtopologyDescription {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Group by connectivity without validation.
	seen := map[*nodeDef]int{}
	var subs []*subtopology
	var visit func(n *nodeDef, s *subtopology)
	visit = func(n *nodeDef, s *subtopology) {
		if _, ok := seen[n]; ok {
			return
		}
		seen[n] = s.id
		s.nodes = append(s.nodes, n)
		for _, p := range n.parents {
			visit(p, s)
		}
		for _, c := range n.children {
			visit(c, s)
		}
	}
	for _, n := range t.nodes {
		if _, ok := seen[n]; !ok {
			s := &subtopology{id: len(subs)}
			subs = append(subs, s)
			visit(n, s)
		}
	}
	return describeSubs(subs)
}

func describeSubs(subs []*subtopology) []SubtopologyDescription {
	out := make([]SubtopologyDescription, 0, len(subs))
	for _, s := range subs {
		size := map[*nodeDef]int{}
		var sizeOf func(n *nodeDef) int
		sizeOf = func(n *nodeDef) int {
			if v, ok := size[n]; ok {
				return v
			}
			v := 1
			for _, c := range n.children {
				v += sizeOf(c)
			}
			size[n] = v
			return v
		}
		less := func(a, b *nodeDef) bool {
			sa, sb := sizeOf(a), sizeOf(b)
			if sa != sb {
				return sa > sb
			}
			return a.name < b.name
		}
		ordered := func(ns []*nodeDef) []string {
			cp := append([]*nodeDef(nil), ns...)
			sort.SliceStable(cp, func(i, j int) bool { return less(cp[i], cp[j]) })
			return nodeNames(cp)
		}
		nodes := append([]*nodeDef(nil), s.nodes...)
		sort.SliceStable(nodes, func(i, j int) bool { return less(nodes[i], nodes[j]) })
		sd := SubtopologyDescription{ID: s.id}
		for _, n := range nodes {
			sd.Nodes = append(sd.Nodes, NodeDescription{
				Name:         n.name,
				Kind:         n.kind.String(),
				Topics:       append([]string(nil), n.topics...),
				Topic:        n.topic,
				TopicChooser: n.topicExtractor,
				Stores:       append([]string(nil), n.stores...),
				Successors:   ordered(n.children),
				Predecessors: ordered(n.parents),
			})
		}
		out = append(out, sd)
	}
	return out
}

// String renders the description in Kafka Streams' format.
func (d Description) String() string {
	var b strings.Builder
	b.WriteString("Topologies:\n ")
	for _, s := range d.Subtopologies {
		b.WriteString("  ")
		b.WriteString(s.String())
	}
	return b.String()
}

// String renders one sub-topology in Kafka Streams' format (ending with a blank line).
func (s SubtopologyDescription) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Sub-topology: %d\n", s.ID)
	for _, n := range s.Nodes {
		b.WriteString("    ")
		b.WriteString(n.String())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
}

// String renders one node in Kafka Streams' format.
func (n NodeDescription) String() string {
	switch n.Kind {
	case "source":
		return fmt.Sprintf("Source: %s (topics: [%s])\n      --> %s", n.Name, strings.Join(n.Topics, ", "), names(n.Successors))
	case "sink":
		if n.Topic == "" {
			return fmt.Sprintf("Sink: %s (extractor class: %s)\n      <-- %s", n.Name, n.TopicChooser, names(n.Predecessors))
		}
		return fmt.Sprintf("Sink: %s (topic: %s)\n      <-- %s", n.Name, n.Topic, names(n.Predecessors))
	}
	return fmt.Sprintf("Processor: %s (stores: [%s])\n      --> %s\n      <-- %s",
		n.Name, strings.Join(n.Stores, ", "), names(n.Successors), names(n.Predecessors))
}

func names(ns []string) string {
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

// Mermaid renders the description as a Mermaid flowchart: one subgraph per sub-topology, topics
// as parallelograms, stores as cylinders.
func (d Description) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	ids := map[string]string{}
	id := func(kind, name string) string {
		k := kind + ":" + name
		if v, ok := ids[k]; ok {
			return v
		}
		v := fmt.Sprintf("%s%d", kind, len(ids))
		ids[k] = v
		return v
	}
	var edges []string
	topicDecl := map[string]bool{}
	storeDecl := map[string]bool{}
	declare := func(kind, name string) string {
		i := id(kind, name)
		switch kind {
		case "t":
			if !topicDecl[name] {
				topicDecl[name] = true
				fmt.Fprintf(&b, "  %s[/%q/]\n", i, name)
			}
		case "s":
			if !storeDecl[name] {
				storeDecl[name] = true
				fmt.Fprintf(&b, "  %s[(%q)]\n", i, name)
			}
		}
		return i
	}
	for _, s := range d.Subtopologies {
		fmt.Fprintf(&b, "  subgraph sub%d [\"Sub-topology %d\"]\n", s.ID, s.ID)
		for _, n := range s.Nodes {
			fmt.Fprintf(&b, "    %s[%q]\n", id("n", n.Name), n.Name)
		}
		b.WriteString("  end\n")
	}
	for _, s := range d.Subtopologies {
		for _, n := range s.Nodes {
			me := id("n", n.Name)
			for _, t := range n.Topics {
				edges = append(edges, fmt.Sprintf("  %s --> %s", declare("t", t), me))
			}
			if n.Kind == "sink" {
				target := n.Topic
				if target == "" {
					target = "(" + n.TopicChooser + ")"
				}
				edges = append(edges, fmt.Sprintf("  %s --> %s", me, declare("t", target)))
			}
			for _, c := range n.Successors {
				edges = append(edges, fmt.Sprintf("  %s --> %s", me, id("n", c)))
			}
			for _, st := range n.Stores {
				edges = append(edges, fmt.Sprintf("  %s -.- %s", me, declare("s", st)))
			}
		}
	}
	for _, e := range edges {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}
