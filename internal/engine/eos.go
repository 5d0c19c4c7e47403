package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
)

// Exactly-once (EOS v2, one transactional producer per instance).
//
// Every commit interval:
//  1. polling pauses, and every task drains what it has buffered, so that what was polled is
//     exactly what was processed (franz-go's GroupTransactSession commits what was polled);
//  2. every task flushes its stores into the transaction and waits, without producing;
//  3. the transaction ends: outputs, changelog and repartition records, and the input offsets
//     (with the group's generation, so a zombie is fenced) commit together, or abort together;
//  4. committed: every task applies its flushed writes and changelog checkpoints to its local
//     store, a new transaction begins, and processing resumes. Aborted: every task is dropped and
//     rebuilt from its local store (which only ever holds committed state), fetching rewinds to
//     the committed offsets, and the records are processed again.
//
// A rebalance aborts the transaction in flight (franz-go's GroupTransactSession does so when
// partitions are revoked or lost): revoked tasks are dropped at once, the others are rebuilt at
// the next commit.

// The transaction gate. Tasks process records and punctuate between commit rounds only: a round
// first waits for the batches in progress to end (txnEnter/txnExit count them), then gathers the
// ready tasks, and ends and begins the transaction while no task produces. A task that is not in
// the round (it was restoring) waits in txnEnter, serving control requests, until the round ends.
// Under at-least-once the gate is open.

// txnEnter is called by a runner before it processes a batch or punctuates. It returns false if
// the runner was stopped while waiting.
func (e *Engine) txnEnter(r *runner) bool {
	if e.sess == nil {
		return true
	}
	for {
		e.txnMu.Lock()
		if !e.roundActive {
			e.inflight++
			e.txnMu.Unlock()
			return true
		}
		over := e.roundOver
		e.txnMu.Unlock()
		select {
		case f := <-r.ctrl:
			r.control(f)
		case <-over:
		case <-r.quit:
			return false
		}
	}
}

// txnExit ends what txnEnter began.
func (e *Engine) txnExit() {
	if e.sess == nil {
		return
	}
	e.txnMu.Lock()
	e.inflight--
	if e.inflight == 0 && e.drained != nil {
		close(e.drained)
		e.drained = nil
	}
	e.txnMu.Unlock()
}

// startRound closes the gate and waits for the batches in progress to end.
func (e *Engine) startRound(ctx context.Context) (end func(), err error) {
	e.txnMu.Lock()
	e.roundActive = true
	e.roundOver = make(chan struct{})
	drained := make(chan struct{})
	if e.inflight == 0 {
		close(drained)
	} else {
		e.drained = drained
	}
	e.txnMu.Unlock()
	end = func() {
		e.txnMu.Lock()
		e.roundActive = false
		e.drained = nil
		close(e.roundOver)
		e.txnMu.Unlock()
	}
	select {
	case <-drained:
		return end, nil
	case <-ctx.Done():
		end()
		return nil, ctx.Err()
	}
}

// txnRound is one commit round, handed to each runner.
type txnRound struct {
	done      chan struct{} // closed when the transaction ended and the next one began
	committed bool          // set before done is closed
	mu        sync.Mutex
}

// instanceID returns this instance's stable id, kept in the state dir so a restarted instance
// reuses its transactional id: the broker then fences the dead one's producer and aborts its open
// transaction at once, instead of after the transaction timeout.
func instanceID(stateDir string) (string, error) {
	if stateDir == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:]), nil
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(stateDir, "instance.id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("engine: writing %s: %w", path, err)
	}
	return id, nil
}

// pausePolling stops the poll loop between two polls (cancelling a poll that waits for data) and
// returns once it is stopped; resume lets it go on. After the poll loop returned (shutdown) there
// is nothing to pause.
func (e *Engine) pausePolling(ctx context.Context) (resume func(), err error) {
	e.pollMu.Lock()
	if e.pollExited {
		e.pollMu.Unlock()
		return func() {}, nil
	}
	e.pollPause = make(chan struct{})
	paused := make(chan struct{})
	e.pollPaused = paused
	if e.pollCancel != nil {
		e.pollCancel()
	}
	e.pollMu.Unlock()
	resume = func() {
		e.pollMu.Lock()
		close(e.pollPause)
		e.pollPause, e.pollPaused = nil, nil
		e.pollMu.Unlock()
	}
	select {
	case <-paused:
		return resume, nil
	case <-ctx.Done():
		resume()
		return nil, ctx.Err()
	}
}

// commitTxn runs one exactly-once commit round. It returns the error that must stop the app (a
// fenced producer, say); an aborted transaction is not an error.
func (e *Engine) commitTxn(ctx context.Context) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	resume, err := e.pausePolling(ctx)
	if err != nil {
		return err
	}
	defer resume()
	endRound, err := e.startRound(ctx)
	if err != nil {
		return err
	}
	defer endRound()

	var runners []*runner
	for _, r := range e.runners() {
		if r.ready.Load() {
			runners = append(runners, r)
		}
	}

	round := &txnRound{done: make(chan struct{})}
	// giveUp ends a round that stops the instance before its transaction's outcome is known to
	// be a commit: the tasks that joined it flushed their writes and wait for the outcome, and
	// their stores still hold those writes, to apply at the next commit. No later commit may
	// apply them (the transaction did not commit, or may not have), so every task is dropped
	// with them, as an abort would: nothing of this round reaches local state. (A task kept
	// here applied an aborted transaction's writes at the next round that skipped End, before
	// the instance stopped: the exactly-once fault suite's overcounted aggregates after a
	// producer fenced mid-round, TestFailedEndLeavesNoWritesBehind.)
	giveUp := func(err error) error {
		close(round.done)
		e.dropTasks()
		return err
	}
	type joinedRunner struct {
		r    *runner
		snap chan snapshot
	}
	var joined []joinedRunner
	for _, r := range runners {
		ch := make(chan snapshot, 1)
		select {
		case r.ctrl <- func() { r.txnCommit(round, ch) }:
			joined = append(joined, joinedRunner{r, ch})
		case <-r.exited:
		case <-ctx.Done():
			return giveUp(ctx.Err())
		}
	}
	failed, produced := false, false
	processed := map[topicPartition]int64{} // the offset after the last record each task processed
	for _, j := range joined {
		select {
		case s := <-j.snap:
			failed = failed || !s.ok
			produced = produced || s.produced
			for t, ps := range s.offsets {
				for p, o := range ps {
					processed[topicPartition{t, p}] = o.Offset
				}
			}
		case <-j.r.exited:
			// dropped meanwhile (a revocation): the session aborts this round anyway
		case <-ctx.Done():
			return giveUp(ctx.Err())
		}
	}

	polled, force := e.polled.Swap(0), e.txnForce.Swap(false)
	if !failed && !produced && polled == 0 && !force {
		// Nothing was read or written: the open transaction is still empty (the broker does not
		// know of it yet), so there is nothing to end. Ending it anyway would cost a heartbeat
		// round trip and stall polling for nothing.
		round.mu.Lock()
		round.committed = true
		round.mu.Unlock()
		close(round.done)
		return nil
	}
	// End gets its own bound, not the round's: a canceled or timed-out End leaves the session in
	// an invalid state (franz-go's GroupTransactSession.End), and during a broker bounce flushing
	// the records and ending the transaction can take longer than the round's deadline.
	endCtx, cancelEnd := context.WithTimeout(e.produceCtx, endTxnTimeout)
	defer cancelEnd()
	// Every record of the transaction is acknowledged or refused before the outcome is chosen:
	// franz-go commits whatever was produced when asked to commit, so a record refused while
	// End flushes would be missing from a committed transaction whose input offsets commit.
	if produced {
		// Twice: a record refused during the first flush and dead-lettered by the production
		// handler is produced from a goroutine its promise starts (produceFailed); the second
		// flush, once those are handed to the client, puts it in this transaction, with the
		// input offsets it stands for. Refusals of dead-letter records are fatal, so there is no
		// third generation.
		err := e.cl.Flush(endCtx)
		if err == nil {
			e.deadLetters.Wait()
			err = e.cl.Flush(endCtx)
		}
		if err != nil {
			return giveUp(fmt.Errorf("engine: flushing the transaction's records: %w", err))
		}
	}
	commit := kgo.TryCommit
	if failed {
		commit = kgo.TryAbort // a task failed: nothing of this round may commit
	} else if e.txnDoomed.Load() {
		e.log.Warn("a record of the transaction could not be produced; aborting it, and its input is processed again")
		commit = kgo.TryAbort
	} else if gaps := e.unprocessedPolled(processed); len(gaps) > 0 {
		// The session commits the offsets of what was polled. Every polled record must have been
		// processed by a task in this round; if not, committing would lose records. Never
		// expected: a safety net that turns a bug into a retry.
		e.log.Error("transaction would commit offsets past records no task processed; aborting it instead", "partitions", gaps)
		commit = kgo.TryAbort
	}
	committed, endErr := e.sess.End(endCtx, commit)
	// The transaction's records are all settled now (an abort fails the ones still buffered),
	// and no task produces until the round ends: the next transaction starts clean.
	e.txnDoomed.Store(false)
	if endErr != nil && !isFenced(endErr) && kafka.Retriable(endErr) {
		// A broker going away mid-End (a TxnOffsetCommit or EndTxn that could not reach it):
		// franz-go then aborts or leaves the outcome to the broker. Either way treating the
		// transaction as aborted is safe: the rewind reads the committed offsets with
		// RequireStable (it sees a commit that did happen), and rebuilt tasks restore their
		// changelogs read_committed from their checkpoints.
		e.log.Warn("ending the transaction failed on a transient error; it counts as aborted and the tasks are rebuilt from committed state", "error", endErr)
		committed, endErr = false, nil
	}
	if endErr == nil {
		endErr = e.sess.Begin()
	}
	if endErr != nil {
		if isFenced(endErr) {
			return giveUp(fmt.Errorf("engine: this instance was fenced: another instance now owns its transactional id or its tasks (a zombie); stopping: %w", endErr))
		}
		return giveUp(fmt.Errorf("engine: ending the transaction: %w", endErr))
	}
	round.mu.Lock()
	round.committed = committed
	round.mu.Unlock()
	close(round.done)
	if committed {
		e.rewound = nil // every rewound position is committed now (franz-go knows it as such)
		e.commits.Add(1)
		return nil
	}
	e.aborts.Add(1)
	e.log.Info("transaction aborted (a rebalance, or a task failure); rebuilding tasks from their committed state")
	return e.rebuildAfterAbort()
}

// txnCommit runs on the runner goroutine: drain, flush, hand over the snapshot, wait for the
// transaction to end, then apply (committed) or mark the task for rebuilding (aborted).
func (r *runner) txnCommit(round *txnRound, out chan<- snapshot) {
	if r.failed == nil {
		for {
			r.take(batchSize)
			if len(r.batch) == 0 {
				break
			}
			r.processBatch()
			if r.failed != nil {
				break
			}
		}
	}
	out <- r.takeSnapshot()
	// Every way out leaves pendingApply nil: under exactly-once the runner's loop (and its exit)
	// must never apply writes that no committed transaction holds.
	select {
	case <-round.done:
	case <-r.quit:
		select {
		case <-round.done: // both ready: the outcome is known, honour it
		default:
			r.pendingApply = nil // dropped before the outcome: the local state stays committed-only
			return
		}
	}
	round.mu.Lock()
	committed := round.committed
	round.mu.Unlock()
	if !committed {
		r.pendingApply = nil // the flushed writes were aborted: never apply them
		return
	}
	r.applyPending(context.Background())
}

// dropTasks stops and closes every task without applying anything: their writes since the last
// commit go with them. For a round that stops the instance (see commitTxn).
func (e *Engine) dropTasks() {
	for _, r := range e.runners() {
		r.abort()
		e.closeRunner(r)
	}
}

// rebuildAfterAbort drops every task (their unapplied writes go with them) and builds them again
// from their local stores, after rewinding fetching to the committed offsets.
func (e *Engine) rebuildAfterAbort() error {
	old := e.runners()
	assigned := map[string][]int32{}
	for _, r := range old {
		r.abort()
		r.mu.Lock()
		for _, q := range r.queues {
			assigned[q.topic] = append(assigned[q.topic], q.partition)
		}
		r.mu.Unlock()
		e.closeRunner(r)
	}
	// The rewind has its own bound, not what is left of the round's: the round may have spent it
	// in a slow End, and a task dropped here is only rebuilt after the rewind.
	ctx, cancel := context.WithTimeout(e.produceCtx, rewindTimeout)
	defer cancel()
	if err := kafka.RetryTransientFor(ctx, rewindTimeout, func() error { return e.rewind(ctx, assigned) }); err != nil {
		return err
	}
	e.onAssigned(ctx, e.cl, assigned)
	return nil
}

// rewind sets the fetch offsets of partitions to their committed offsets, so aborted work is read
// again. A partition without a committed offset goes back to the first record polled of it since
// it was assigned: that is where the reset policy put it (the log start, or under ResetLatest the
// end as it was then; listing the end again now would skip what arrived since). A partition with
// neither stays where it is: nothing of it was polled, so nothing is lost. It records where it
// put each partition (see polledGaps). Transient errors are the caller's to retry.
func (e *Engine) rewind(ctx context.Context, parts map[string][]int32) error {
	if len(parts) == 0 {
		return nil
	}
	// RequireStable: an offset commit still pending in a transaction (of the previous owner of a
	// partition that just moved here) must be waited for, not read past: its older committed
	// offset would make this instance process again what that transaction committed.
	committed, err := e.adm.FetchOffsets(kadm.RequireStable(ctx), e.cfg.AppID)
	if err != nil {
		return fmt.Errorf("engine: fetching committed offsets to rewind: %w", err)
	}
	e.mu.Lock()
	first := maps.Clone(e.firstPolled)
	e.mu.Unlock()
	set := map[string]map[int32]kgo.EpochOffset{}
	for t, ps := range parts {
		set[t] = map[int32]kgo.EpochOffset{}
		for _, p := range ps {
			c, ok := committed.Lookup(t, p)
			if ok && c.Err != nil {
				// Not "no commit": falling back to the reset offset would process committed
				// records again.
				return fmt.Errorf("engine: fetching the committed offset of %s[%d] to rewind: %w", t, p, c.Err)
			}
			if ok && c.At >= 0 {
				set[t][p] = kgo.EpochOffset{Epoch: c.LeaderEpoch, Offset: c.At}
				continue
			}
			if at, ok := first[topicPartition{t, p}]; ok {
				set[t][p] = kgo.EpochOffset{Epoch: -1, Offset: at}
				continue
			}
			// Never polled since it was assigned: it still sits where the reset policy put
			// it, and nothing of it was processed.
		}
	}
	e.cl.SetOffsets(set)
	e.rewound = map[topicPartition]int64{}
	for t, ps := range set {
		for p, o := range ps {
			e.rewound[topicPartition{t, p}] = o.Offset
		}
	}
	return nil
}

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

// transactionTimeout is Kafka Streams' EOS default (transaction.timeout.ms): how long a dead
// instance's open transaction blocks read_committed readers if nothing fences it sooner.
const transactionTimeout = 10 * time.Second

// endTxnTimeout bounds ending a transaction. It is far above the round's deadline: an End that
// is cut short leaves the transactional session unusable, so it is only ever cut when ending the
// transaction is hopeless (the cluster has been gone for minutes), and then the instance stops.
const endTxnTimeout = 5 * time.Minute

// rewindTimeout bounds the rewind after an abort, transient errors (a broker restarting) retried.
const rewindTimeout = time.Minute

// unprocessedPolled lists the partitions whose polled position (what the transaction would
// commit) is not where a task's processing reached.
func (e *Engine) unprocessedPolled(processed map[topicPartition]int64) []string {
	return polledGaps(e.cl.UncommittedOffsets(), processed, e.rewound)
}

// polledGaps is unprocessedPolled's decision. polled is what the transaction would commit per
// partition, processed the offset after the last record a task processed (no entry: none since
// the task was built), rewound where the last rewind put each partition. A partition is in order
// if its task processed exactly up to its polled position, or if no task processed anything of it
// and it sits where the rewind put it: franz-go reports a rewound position as uncommitted, but
// committing it commits nothing that was not committed (or, without a commit, where the reset
// policy starts anyway). Anything else would commit records no task processed: a gap.
func polledGaps(polled map[string]map[int32]kgo.EpochOffset, processed, rewound map[topicPartition]int64) []string {
	var gaps []string
	for t, ps := range polled {
		for p, o := range ps {
			tp := topicPartition{t, p}
			if got, ok := processed[tp]; ok {
				if got != o.Offset {
					gaps = append(gaps, fmt.Sprintf("%s[%d] polled to %d, processed to %d", t, p, o.Offset, got))
				}
				continue
			}
			if at, ok := rewound[tp]; !ok || at != o.Offset {
				gaps = append(gaps, fmt.Sprintf("%s[%d] polled to %d, nothing processed since the task started", t, p, o.Offset))
			}
		}
	}
	sort.Strings(gaps)
	return gaps
}
