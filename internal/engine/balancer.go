package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rifflestream/riffle/topology"
)

// ProtocolName is the group protocol Riffle members join with. Members of one app must all use it.
const ProtocolName = "riffle"

// balancer assigns tasks, not partitions: every partition of a task goes to one member. It is
// cooperative (KIP-429: a moving task is first revoked from its owner, then assigned in a second
// round) and sticky (tasks stay with the member that owns them, or that holds their state on disk),
// and spreads tasks evenly (each member gets the floor or ceiling of tasks/members, and each
// sub-topology's tasks are spread too).
//
// Members advertise, in the standard consumer protocol's metadata (so tools like kadm and
// kafka-consumer-groups.sh still read the group), the partitions they own and in UserData a hash
// of their topology and the tasks whose state they keep on disk.
type balancer struct {
	plan      *topology.Plan
	topoHash  uint64
	subTopics [][]string // per sub-topology id: its source topics
	// localTasks returns the tasks with state on this instance's disk (for a sticky return after
	// a restart). May be nil.
	localTasks func() []topology.TaskID
	log        *slog.Logger
}

func newBalancer(plan *topology.Plan, localTasks func() []topology.TaskID, log *slog.Logger) *balancer {
	b := &balancer{plan: plan, localTasks: localTasks, log: log}
	h := fnv.New64a()
	h.Write([]byte(plan.Describe().String()))
	b.topoHash = h.Sum64()
	for _, s := range plan.Subtopologies {
		b.subTopics = append(b.subTopics, s.SourceTopics)
	}
	return b
}

func (b *balancer) ProtocolName() string { return ProtocolName }
func (b *balancer) IsCooperative() bool  { return true }

func (b *balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = t
		owned.Partitions = current[t]
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	ud := userData{topoHash: b.topoHash}
	if b.localTasks != nil {
		ud.local = b.localTasks()
	}
	meta.UserData = ud.encode()
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance is called on the group leader with every member's metadata and the partition counts of
// the topics they subscribe to.
func (b *balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	var members []memberInfo
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		mi := memberInfo{id: m.MemberID, member: m, generation: meta.Generation, topics: map[string]bool{}}
		for _, t := range meta.Topics {
			mi.topics[t] = true
		}
		ud, err := decodeUserData(meta.UserData)
		if err != nil {
			b.log.Warn("group member sent metadata Riffle cannot read; treating it as stateless", "member", m.MemberID, "error", err)
		} else {
			if ud.topoHash != b.topoHash {
				b.log.Warn("group member runs a different topology (a rolling upgrade?); assigning it only tasks of topics it subscribes to", "member", m.MemberID)
			}
			mi.local = ud.local
		}
		for _, o := range meta.OwnedPartitions {
			for _, p := range o.Partitions {
				mi.owned = append(mi.owned, topicPartition{o.Topic, p})
			}
		}
		members = append(members, mi)
	})
	tasks := b.tasks(topics)
	assigned := assignTasks(tasks, members)
	plan := cb.NewPlan()
	for mi, ids := range assigned {
		byTopic := map[string][]int32{}
		for _, id := range ids {
			for _, t := range b.subTopics[id.Subtopology] {
				if n, ok := topics[t]; ok && id.Partition < n {
					byTopic[t] = append(byTopic[t], id.Partition)
				}
			}
		}
		for t, ps := range byTopic {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			plan.AddPartitions(members[mi].member, t, ps)
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}

// tasks lists the tasks given the topics' partition counts: for each sub-topology, one task per
// partition of its largest source topic. Sub-topologies whose topics are not all known yet get
// tasks for the known ones.
func (b *balancer) tasks(topics map[string]int32) []taskInfo {
	var out []taskInfo
	for sub, ts := range b.subTopics {
		var n int32
		for _, t := range ts {
			n = max(n, topics[t])
		}
		for p := int32(0); p < n; p++ {
			ti := taskInfo{id: topology.TaskID{Subtopology: sub, Partition: p}}
			for _, t := range ts {
				if p < topics[t] {
					ti.partitions = append(ti.partitions, topicPartition{t, p})
				}
			}
			out = append(out, ti)
		}
	}
	return out
}

type topicPartition struct {
	topic     string
	partition int32
}

type taskInfo struct {
	id         topology.TaskID
	partitions []topicPartition
}

type memberInfo struct {
	id         string
	member     *kmsg.JoinGroupResponseMember
	generation int32
	topics     map[string]bool
	owned      []topicPartition
	local      []topology.TaskID
}

// assignTasks is the assignment algorithm, free of Kafka types so it can be tested alone. It
// returns, per member index, the tasks it gets. The result is deterministic for a given input
// (members come sorted by kgo).
//
//  1. A task's previous owner is the member that claims its partitions with the highest
//     generation (KIP-792: a stale claim from a member that missed rebalances loses).
//  2. Capacity: with T tasks and M members, every member gets floor(T/M) tasks and T mod M of
//     them one more.
//  3. Owners keep their tasks up to capacity (sticky).
//  4. Remaining tasks go first to a member with the task's state on disk, then to the member with
//     the fewest tasks of that sub-topology and then overall (so each sub-topology is spread).
//
// A member only gets tasks whose topics it subscribes to.
func assignTasks(tasks []taskInfo, members []memberInfo) map[int][]topology.TaskID {
	out := map[int][]topology.TaskID{}
	if len(members) == 0 || len(tasks) == 0 {
		return out
	}
	// Visit tasks interleaved across sub-topologies (by partition, then sub-topology), so that the
	// tasks an owner keeps, and those that move, are spread over the sub-topologies.
	tasks = append([]taskInfo(nil), tasks...)
	sort.SliceStable(tasks, func(i, j int) bool {
		a, b := tasks[i].id, tasks[j].id
		return a.Partition < b.Partition || a.Partition == b.Partition && a.Subtopology < b.Subtopology
	})
	// Highest-generation claim per partition.
	type claim struct {
		member int
		gen    int32
	}
	claims := map[topicPartition]claim{}
	for i, m := range members {
		for _, tp := range m.owned {
			if c, ok := claims[tp]; !ok || m.generation > c.gen {
				claims[tp] = claim{member: i, gen: m.generation}
			}
		}
	}
	subscribed := func(m memberInfo, t taskInfo) bool {
		for _, tp := range t.partitions {
			if !m.topics[tp.topic] {
				return false
			}
		}
		return true
	}
	owner := func(t taskInfo) int {
		votes := map[int]int{}
		best, bestVotes := -1, 0
		for _, tp := range t.partitions {
			if c, ok := claims[tp]; ok {
				votes[c.member]++
				if v := votes[c.member]; v > bestVotes || v == bestVotes && c.member < best {
					best, bestVotes = c.member, v
				}
			}
		}
		return best
	}
	local := map[topology.TaskID][]int{}
	for i, m := range members {
		for _, id := range m.local {
			local[id] = append(local[id], i)
		}
	}

	n, mcount := len(tasks), len(members)
	floor := n / mcount
	extra := n % mcount // members that may take floor+1
	count := make([]int, mcount)
	perSub := make([]map[int]int, mcount)
	for i := range perSub {
		perSub[i] = map[int]int{}
	}
	canTake := func(i int) bool {
		if count[i] < floor {
			return true
		}
		return count[i] == floor && extra > 0
	}
	give := func(i int, t taskInfo) {
		if count[i] == floor {
			extra--
		}
		count[i]++
		perSub[i][t.id.Subtopology]++
		out[i] = append(out[i], t.id)
	}
	done := make([]bool, n)
	// Sticky pass: first up to floor for everyone, then the extras, so an owner of many tasks
	// cannot take every extra slot while another member is below floor.
	for _, limitToFloor := range []bool{true, false} {
		for ti, t := range tasks {
			if done[ti] {
				continue
			}
			o := owner(t)
			if o < 0 || !subscribed(members[o], t) {
				continue
			}
			if limitToFloor && count[o] >= floor {
				continue
			}
			if canTake(o) {
				give(o, t)
				done[ti] = true
			}
		}
	}
	// State-affinity pass.
	for ti, t := range tasks {
		if done[ti] {
			continue
		}
		for _, i := range local[t.id] {
			if subscribed(members[i], t) && count[i] < floor {
				give(i, t)
				done[ti] = true
				break
			}
		}
	}
	// Everything else: the least loaded member for the task's sub-topology, then overall.
	for ti, t := range tasks {
		if done[ti] {
			continue
		}
		best := -1
		for i := range members {
			if !subscribed(members[i], t) || !canTake(i) {
				continue
			}
			if best < 0 || perSub[i][t.id.Subtopology] < perSub[best][t.id.Subtopology] ||
				perSub[i][t.id.Subtopology] == perSub[best][t.id.Subtopology] && count[i] < count[best] {
				best = i
			}
		}
		if best < 0 {
			// Nobody under capacity subscribes (mixed subscriptions): take the least loaded subscriber.
			for i := range members {
				if subscribed(members[i], t) && (best < 0 || count[i] < count[best]) {
					best = i
				}
			}
		}
		if best >= 0 {
			give(best, t)
			done[ti] = true
		}
	}
	for i := range out {
		sort.Slice(out[i], func(a, b int) bool {
			x, y := out[i][a], out[i][b]
			return x.Subtopology < y.Subtopology || x.Subtopology == y.Subtopology && x.Partition < y.Partition
		})
	}
	return out
}

// userData is what a Riffle member puts in the consumer protocol's UserData:
//
//	byte    version (1)
//	uint64  topology hash (big-endian)
//	uvarint number of local tasks, then per task: uvarint sub-topology, uvarint partition
type userData struct {
	topoHash uint64
	local    []topology.TaskID
}

const userDataVersion = 1

func (u userData) encode() []byte {
	b := make([]byte, 0, 9+2*binary.MaxVarintLen32*len(u.local)+binary.MaxVarintLen32)
	b = append(b, userDataVersion)
	b = binary.BigEndian.AppendUint64(b, u.topoHash)
	b = binary.AppendUvarint(b, uint64(len(u.local)))
	for _, id := range u.local {
		b = binary.AppendUvarint(b, uint64(id.Subtopology))
		b = binary.AppendUvarint(b, uint64(id.Partition))
	}
	return b
}

var errUserData = errors.New("engine: malformed Riffle member user data")

func decodeUserData(b []byte) (userData, error) {
	var u userData
	if len(b) < 9 {
		return u, errUserData
	}
	if b[0] != userDataVersion {
		return u, fmt.Errorf("engine: member user data version %d, this Riffle knows %d", b[0], userDataVersion)
	}
	u.topoHash = binary.BigEndian.Uint64(b[1:9])
	b = b[9:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return u, errUserData
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		s, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return u, errUserData
		}
		p, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || s > 1<<20 || p > 1<<31-1 {
			return u, errUserData
		}
		b = b[k1+k2:]
		u.local = append(u.local, topology.TaskID{Subtopology: int(s), Partition: int32(p)})
	}
	return u, nil
}
