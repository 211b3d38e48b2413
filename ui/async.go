package ui

import (
	"context"
	"sync"
	"time"

	"fyne.io/fyne/v2"
)

// doUI runs f on the Fyne UI goroutine; every update from a background
// goroutine goes through it. It is a variable only so that the package's tests
// can serialise those updates (see the package doc).
var doUI = fyne.Do

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

// everySecond calls f on the UI goroutine once a second, for countdowns, until
// the returned stop is called. stop may be called more than once and from any
// goroutine; once it was called on the UI goroutine, f does not run again.
func everySecond(f func()) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				doUI(func() {
					select {
					case <-done:
					default:
						f()
					}
				})
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
