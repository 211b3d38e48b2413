package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// The hot writes of issue 13 (a capped device authorization, as the provider makes
// them, among 80,000 requests; an approval behind code limits), run by 64 callers at
// once as linkdbench's connections would. Besides
// ns/op they report cpu-ns/op, the process's CPU time (user and system) per
// operation, which a shared, noisy machine disturbs far less than wall time.
// Run: go test -tags migrated_fynedo -run '^$' -bench Hot ./server/store/sqlite/

// hotCallers is how many goroutines write at once.
const hotCallers = 64

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procIO reads the process's I/O counters (/proc/self/io): syscw counts write
// system calls and wchar their bytes, which show how many pages a commit writes.
func procIO(b *testing.B) map[string]int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	io := map[string]int64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			io[k] = n
		}
	}
	return io
}

// runHot runs op b.N times over hotCallers goroutines and reports cpu-ns/op.
func runHot(b *testing.B, db *DB, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	db.group.mu.Lock()
	shared0, batches0 := db.group.shared, db.group.batches
	db.group.mu.Unlock()
	runtime.GC() // the set-up's garbage is not the operations' to collect
	b.ResetTimer()
	cpu := cpuTime()
	io0 := procIO(b)
	for range hotCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	io := procIO(b)
	b.ReportMetric(float64(io["syscw"]-io0["syscw"])/float64(b.N), "writes/op")
	b.ReportMetric(float64(io["syscr"]-io0["syscr"])/float64(b.N), "reads/op")
	b.ReportMetric(float64(io["wchar"]-io0["wchar"])/float64(b.N), "written-B/op")
	db.group.mu.Lock()
	if n := db.group.batches - batches0; n > 0 {
		b.ReportMetric(float64(db.group.shared-shared0)/float64(n), "ops/batch")
	}
	db.group.mu.Unlock()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// hotPending stores n pending requests (as linkdbench does, in one transaction) and
// returns their user codes.
func hotPending(b *testing.B, db *DB, prefix string, n int) []string {
	codes := make([]string, n)
	now := time.Now()
	ctx := context.Background()
	err := db.inTx(ctx, "bench setup", func(tx *sql.Tx) error {
		for i := range codes {
			codes[i] = fmt.Sprintf("%s%07d", prefix, i)
			d, err := newDeviceAuth(store.DeviceAuth{DeviceCode: "dc-" + codes[i], UserCode: codes[i],
				ClientID: "kiosk", Scopes: []string{"openid", "offline_access"}, RequestIP: fmt.Sprintf("198.18.%d.%d", i/100>>8&255, i/100&255),
				CreatedAt: now, ExpiresAt: now.Add(time.Hour), Interval: 5 * time.Second, State: store.DeviceAuthPending})
			if err == nil {
				err = createDeviceAuthTx(ctx, db.prepared(tx), d, false, false)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return codes
}

func BenchmarkHotCreateDeviceAuthCapped(b *testing.B) {
	db, _ := openTemp(b)
	hotPending(b, db, "P", 80000)
	caps := store.RequestCaps{Window: time.Minute, PerIPRate: 1 << 30, PerClientRate: 1 << 30,
		PerIP: 1 << 30, PerClient: 1 << 30, Total: 1 << 30, Keep: time.Hour}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	create := func(i int) error {
		now := time.Now()
		return db.CreateDeviceAuthCapped(context.Background(), store.DeviceAuth{
			DeviceCode: fmt.Sprintf("%016x.dev-%s-%d", now.UnixNano(), run, i), UserCode: fmt.Sprintf("C%s%d", run[len(run)-6:], i),
			ClientID: "kiosk", Scopes: []string{"openid", "offline_access"}, RequestIP: "127.0.0.1",
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second, State: store.DeviceAuthPending,
		}, caps)
	}
	if err := create(-1); err != nil { // sweeps the pending requests' flags once
		b.Fatal(err)
	}
	runHot(b, db, create)
}

func BenchmarkHotApproveUserCode(b *testing.B) {
	db, _ := openTemp(b)
	codes := hotPending(b, db, "A", b.N+10000)
	runHot(b, db, func(i int) error {
		subject := fmt.Sprintf("user%d", i%200)
		limits := []store.AttemptLimit{
			{Key: "account " + subject, Max: 10, Window: time.Hour, Free: 5, Backoff: time.Second},
			{Key: fmt.Sprintf("address 10.0.%d.%d", i%200/256, i%200%256), Max: 10, Window: time.Hour, Free: 5, Backoff: time.Second},
		}
		ctx, cancel := context.WithCancel(context.Background()) // as a request's context
		defer cancel()
		_, _, err := db.ApproveUserCode(ctx, codes[i], subject, "", limits, time.Now(), nil)
		return err
	})
}
