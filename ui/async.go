package ui

import (
	"context"
	"sync"

	"fyne.io/fyne/v2"
)

// uiMu serialises every UI update made from a background goroutine. Under the
// real driver fyne.Do already runs on the one UI goroutine, so the lock is never
// contended; under the test driver fyne.Do runs on the calling goroutine, and the
// lock gives tests a happens-before edge to read widgets safely (see waitFor).
var uiMu sync.Mutex

// doUI runs f on the Fyne UI goroutine.
func doUI(f func()) {
	fyne.Do(func() {
		uiMu.Lock()
		defer uiMu.Unlock()
		f()
	})
}

// task runs work off the UI goroutine with a cancellable context and hands its
// result to done on the UI goroutine, unless the task was cancelled first.
type task struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	gen    int
}

// start cancels any previous run of t and starts work; done gets its error
// (and is skipped when the run was superseded or cancelled).
func (t *task) start(work func(ctx context.Context) error, done func(err error)) {
	t.mu.Lock()
	if t.cancel != nil {
		t.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.gen++
	gen := t.gen
	t.mu.Unlock()

	go func() {
		err := work(ctx)
		doUI(func() {
			t.mu.Lock()
			current := gen == t.gen && ctx.Err() == nil
			if gen == t.gen {
				t.cancel = nil
			}
			t.mu.Unlock()
			cancel()
			if current && done != nil {
				done(err)
			}
		})
	}()
}

// stop cancels the running work, if any; its done callback will not run.
func (t *task) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
	t.gen++
}

// running reports whether work is in flight.
func (t *task) running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cancel != nil
}
