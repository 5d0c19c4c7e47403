package engine

import (
	"sort"
	"time"

	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

func hasStores(p *topology.Plan) bool {
	for _, s := range p.Subtopologies {
		if len(s.Stores) > 0 {
			return true
		}
	}
	return false
}

// localTasks lists the tasks whose state this instance keeps on disk, for the balancer: a member
// that restarts gets them back and restores only their changelog tails.
func (e *Engine) localTasks() []topology.TaskID {
	if e.mgr == nil {
		return nil
	}
	sps, err := e.mgr.Checkpointed()
	if err != nil {
		e.log.Warn("listing local state", "error", err)
		return nil
	}
	seen := map[topology.TaskID]bool{}
	var out []topology.TaskID
	for _, sp := range sps {
		for _, s := range e.cfg.Plan.Subtopologies {
			for _, name := range s.Stores {
				id := topology.TaskID{Subtopology: s.ID, Partition: sp.Partition}
				if name == sp.Store && !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Subtopology < out[j].Subtopology || out[i].Subtopology == out[j].Subtopology && out[i].Partition < out[j].Partition
	})
	return out
}

// noteLocalState starts the clock of every store partition found on disk: unless its task comes
// here within the cleanup delay, it is deleted.
func (e *Engine) noteLocalState() {
	sps, err := e.mgr.Checkpointed()
	if err != nil {
		return
	}
	e.idleMu.Lock()
	defer e.idleMu.Unlock()
	if e.idleSince == nil {
		e.idleSince = map[state.StorePartition]time.Time{}
	}
	for _, sp := range sps {
		e.idleSince[sp] = time.Now()
	}
}

// markIdle records that a task's state stopped being used here (its task moved away).
func (e *Engine) markIdle(r *runner) {
	if e.mgr == nil {
		return
	}
	e.idleMu.Lock()
	defer e.idleMu.Unlock()
	if e.idleSince == nil {
		e.idleSince = map[state.StorePartition]time.Time{}
	}
	for _, st := range r.task.Stores() {
		e.idleSince[state.StorePartition{Store: st.Name(), Partition: r.id.Partition}] = time.Now()
	}
}

// markActive stops the cleanup clock of a task that came (back) here.
func (e *Engine) markActive(id topology.TaskID) {
	if e.mgr == nil {
		return
	}
	e.idleMu.Lock()
	defer e.idleMu.Unlock()
	for _, name := range e.cfg.Plan.Subtopologies[id.Subtopology].Stores {
		delete(e.idleSince, state.StorePartition{Store: name, Partition: id.Partition})
	}
}

// cleanupState deletes the local state of tasks idle here for longer than the cleanup delay.
func (e *Engine) cleanupState() {
	if e.mgr == nil {
		return
	}
	e.idleMu.Lock()
	var drop []state.StorePartition
	for sp, since := range e.idleSince {
		if time.Since(since) >= e.cfg.StateCleanupDelay {
			drop = append(drop, sp)
			delete(e.idleSince, sp)
		}
	}
	e.idleMu.Unlock()
	for _, sp := range drop {
		if err := e.mgr.Drop(sp.Store, sp.Partition); err != nil {
			e.log.Warn("deleting the state of a task that moved away", "store", sp.Store, "partition", sp.Partition, "error", err)
			continue
		}
		e.log.Info("deleted the local state of a task that moved away", "store", sp.Store, "partition", sp.Partition, "idle_for", e.cfg.StateCleanupDelay)
	}
}
