package batching

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// Items that queue behind a leader run in batches of at most Max, in the order they
// joined, and each caller gets its own item's result.
func TestBatchesInOrderUpToMax(t *testing.T) {
	q := &Queue[int]{Max: 3}
	var mu sync.Mutex
	var batches [][]int
	together := func(batch []int) ([]error, bool) {
		mu.Lock()
		batches = append(batches, slices.Clone(batch))
		mu.Unlock()
		results := make([]error, len(batch))
		for i, n := range batch {
			results[i] = fmt.Errorf("item %d", n)
		}
		return results, true
	}
	alone := func(int) error { t.Error("an item ran alone"); return nil }
	errs := make([]error, 5)
	queueBehindHeldLeader(t, q, len(errs), func(i int) { errs[i] = q.Do(i, together, alone) })
	if want := [][]int{{0, 1, 2}, {3, 4}}; !slices.EqualFunc(batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v", batches, want)
	}
	for i, err := range errs {
		if err == nil || err.Error() != fmt.Sprintf("item %d", i) {
			t.Errorf("item %d got %v", i, err)
		}
	}
}

// A caller that waited alone runs its item alone, and the queue is idle again after.
func TestAloneRunsAtOnce(t *testing.T) {
	q := &Queue[string]{Max: 8}
	want := errors.New("refused")
	together := func([]string) ([]error, bool) { t.Error("a batch of one ran together"); return nil, false }
	for range 3 {
		if err := q.Do("x", together, func(string) error { return want }); err != want {
			t.Fatalf("Do = %v, want %v", err, want)
		}
	}
}

// When a batch cannot run together, each of its items runs alone, with its own result.
func TestBatchFallsBackToAlone(t *testing.T) {
	q := &Queue[int]{Max: 4}
	together := func([]int) ([]error, bool) { return nil, false }
	alone := func(n int) error { return fmt.Errorf("alone %d", n) }
	errs := make([]error, 3)
	queueBehindHeldLeader(t, q, len(errs), func(i int) { errs[i] = q.Do(i, together, alone) })
	for i, err := range errs {
		if err == nil || err.Error() != fmt.Sprintf("alone %d", i) {
			t.Errorf("item %d got %v", i, err)
		}
	}
}

// queueBehindHeldLeader calls do(0) … do(n-1), each in a goroutine of its own once the
// one before has joined q: the first leads and is held until all have joined, so
// they join in that order. It returns when every call has.
func queueBehindHeldLeader[T any](t *testing.T, q *Queue[T], n int, do func(i int)) {
	t.Helper()
	joined := make(chan int, n)
	release := make(chan struct{})
	var once sync.Once
	q.OnQueued(func(n int) { joined <- n })
	q.BeforeBatch(func() { once.Do(func() { <-release }) })
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { do(i) })
		if got := <-joined; got != i+1 {
			t.Fatalf("item %d joined a queue of %d", i, got)
		}
	}
	close(release)
	wg.Wait()
}
