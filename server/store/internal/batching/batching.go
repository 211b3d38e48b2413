// Package batching lets the concurrent callers of a store share one transaction, and
// so one commit: the SQLite store's group commit and the PostgreSQL store's capped
// device requests both queue their callers here.
package batching

import "sync"

// Queue runs items in batches. There is no background goroutine: the first caller to
// find the queue idle leads. It takes the items waiting (its own first, at most Max),
// runs them together, and hands the lead to the next waiting caller. Every caller gets
// its own result, once its batch has run. The zero Queue is not ready: set Max.
type Queue[T any] struct {
	// Max bounds how many items one batch takes.
	Max int

	mu      sync.Mutex
	waiting []*call[T]
	running bool
	queued  func(n int)
	before  func()
}

// call is one caller's item waiting for its batch.
type call[T any] struct {
	item T
	done chan error    // the item's result, once its batch has run
	lead chan struct{} // this caller is to run the next batch
}

// Do queues item and returns its result. A batch of several waiting items, in the
// order they joined, goes to together, which returns one result for each, or false
// when it could not run them together (having changed nothing): then, as for an item
// that waited alone, alone runs each item by itself and its caller is answered at
// once.
func (q *Queue[T]) Do(item T, together func(batch []T) ([]error, bool), alone func(item T) error) error {
	c := &call[T]{item: item, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	q.mu.Lock()
	q.waiting = append(q.waiting, c)
	if q.queued != nil {
		q.queued(len(q.waiting))
	}
	if !q.running {
		q.running = true
		c.lead <- struct{}{}
	}
	q.mu.Unlock()
	select {
	case err := <-c.done:
		return err
	case <-c.lead:
		q.runBatch(together, alone)
		return <-c.done
	}
}

// runBatch takes the waiting items (the leader's first), runs and answers them, and
// passes the lead on.
func (q *Queue[T]) runBatch(together func(batch []T) ([]error, bool), alone func(item T) error) {
	q.mu.Lock()
	before := q.before
	q.mu.Unlock()
	if before != nil {
		before()
	}
	q.mu.Lock()
	n := min(len(q.waiting), max(q.Max, 1))
	calls := append([]*call[T](nil), q.waiting[:n]...)
	q.waiting = q.waiting[n:]
	q.mu.Unlock()

	ran := false
	if len(calls) > 1 {
		items := make([]T, len(calls))
		for i, c := range calls {
			items[i] = c.item
		}
		var results []error
		if results, ran = together(items); ran {
			for i, c := range calls {
				c.done <- results[i]
			}
		}
	}
	if !ran {
		for _, c := range calls {
			c.done <- alone(c.item)
		}
	}

	q.mu.Lock()
	if len(q.waiting) > 0 {
		q.waiting[0].lead <- struct{}{}
	} else {
		q.running = false
	}
	q.mu.Unlock()
}

// OnQueued sets f to be told the queue's length each time an item joins (tests use
// it to wait until the items they started have queued).
func (q *Queue[T]) OnQueued(f func(n int)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queued = f
}

// BeforeBatch sets f to run in the leader before it takes the waiting items (tests
// use it to hold a batch until the items they started have queued).
func (q *Queue[T]) BeforeBatch(f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.before = f
}
