package provider

import (
	"fmt"
	"testing"
	"time"
)

// TestPacer: the first poll is never too soon; a poll up to a fifth of the interval (at
// most 1 s) early is on time, as devices' timers jitter; an earlier one answers
// slow_down and grows that code's interval by 5 s; codes are paced apart.
func TestPacer(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := base
	p := newPacer(func() time.Time { return now })
	expires := base.Add(10 * time.Minute)
	steps := []struct {
		at       time.Duration
		slowDown bool
	}{
		{0, false},
		{4998 * time.Millisecond, false}, // x/oauth2's 5 s ticker, 2 ms early
		{4998*time.Millisecond + 3*time.Second, true}, // 3 s < 5 s - 1 s: interval now 10 s
		{4998*time.Millisecond + 12*time.Second, false},
		{4998*time.Millisecond + 17*time.Second, true}, // 5 s < 10 s - 1 s: interval now 15 s
		{4998*time.Millisecond + 31*time.Second, false},
	}
	for _, st := range steps {
		now = base.Add(st.at)
		if got := p.poll(newPollKey("tv", "code-1"), 5*time.Second, expires); got != st.slowDown {
			t.Fatalf("poll at +%v: slow_down %v, want %v", st.at, got, st.slowDown)
		}
	}
	if p.poll(newPollKey("tv", "code-2"), 5*time.Second, expires) {
		t.Fatal("another code's first poll was paced")
	}
	if p.poll(newPollKey("other", "code-1"), 5*time.Second, expires) {
		t.Fatal("another client's code was paced with this one")
	}
}

// TestPacerBounded: expired codes are swept, and a full pacer answers without pacing
// rather than grow.
func TestPacerBounded(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := newPacer(func() time.Time { return now })
	for i := range maxPacedCodes {
		p.poll(newPollKey("tv", fmt.Sprint(i)), 5*time.Second, now.Add(time.Minute))
	}
	for range 2 { // the second poll at once would be slow_down if the code were tracked
		if p.poll(newPollKey("tv", "one-more"), 5*time.Second, now.Add(time.Minute)) {
			t.Fatal("a full pacer paced a code it could not track")
		}
	}
	if n := len(p.entries); n != maxPacedCodes {
		t.Fatalf("pacer grew to %d entries, bound %d", n, maxPacedCodes)
	}
	now = now.Add(2 * time.Minute) // every code has expired
	p.poll(newPollKey("tv", "fresh"), 5*time.Second, now.Add(time.Minute))
	if n := len(p.entries); n != 1 {
		t.Fatalf("after expiry the pacer holds %d entries, want 1", n)
	}
}
