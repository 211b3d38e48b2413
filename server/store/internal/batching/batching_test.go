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
	joined := make(chan int, 5)
	release := make(chan struct{})
	var once sync.Once
	q.OnQueued(func(n int) { joined <- n })
	q.BeforeBatch(func() { once.Do(func() { <-release }) })
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
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() { errs[i] = q.Do(i, together, alone) })
		if n := <-joined; n != i+1 {
			t.Fatalf("item %d joined a queue of %d", i, n)
		}
	}
	close(release)
	wg.Wait()
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
	joined := make(chan int, 3)
	release := make(chan struct{})
	var once sync.Once
	q.OnQueued(func(n int) { joined <- n })
	q.BeforeBatch(func() { once.Do(func() { <-release }) })
	together := func([]int) ([]error, bool) { return nil, false }
	alone := func(n int) error { return fmt.Errorf("alone %d", n) }
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { errs[i] = q.Do(i, together, alone) })
		<-joined
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err == nil || err.Error() != fmt.Sprintf("alone %d", i) {
			t.Errorf("item %d got %v", i, err)
		}
	}
}
