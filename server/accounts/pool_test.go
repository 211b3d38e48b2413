package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A full pool refuses at once with ErrBusy, and a waiting check gets the slot a
// finished one frees.
func TestPoolBoundsChecks(t *testing.T) {
	p := NewPool(1, 1, time.Minute)
	release := make(chan struct{})
	running := make(chan struct{})
	go p.Do(context.Background(), func() { close(running); <-release })
	<-running
	// The queue holds one: take its place as a waiting check would, and a third is refused.
	p.admit <- struct{}{}
	if err := p.Do(context.Background(), func() { t.Error("ran over the bound") }); !errors.Is(err, ErrBusy) {
		t.Fatalf("third check: %v, want ErrBusy", err)
	}
	<-p.admit // the stand-in leaves; a real check waits for the slot instead
	waited := make(chan error)
	go func() { waited <- p.Do(context.Background(), func() {}) }()
	close(release)
	if err := <-waited; err != nil {
		t.Fatalf("queued check: %v", err)
	}
}

// A check that waits longer than the pool's wait is refused.
func TestPoolWaitBounded(t *testing.T) {
	p := NewPool(1, 1, time.Millisecond)
	release := make(chan struct{})
	running := make(chan struct{})
	go p.Do(context.Background(), func() { close(running); <-release })
	<-running
	defer close(release)
	if err := p.Do(context.Background(), func() {}); !errors.Is(err, ErrBusy) {
		t.Fatalf("check after the wait: %v, want ErrBusy", err)
	}
}

func TestGate(t *testing.T) {
	g := NewGate(2)
	for i := range 2 {
		if !g.Enter("a") {
			t.Fatalf("entry %d refused under the cap", i)
		}
	}
	if g.Enter("a") {
		t.Fatal("let a third in")
	}
	if !g.Enter("b") {
		t.Fatal("another key refused")
	}
	g.Leave("a")
	if !g.Enter("a") {
		t.Fatal("refused after one left")
	}
}

func TestUserTag(t *testing.T) {
	a, b := UserTag("Alice "), UserTag("alice")
	if a != b || len(a) != 12 || strings.Contains(a, "alice") {
		t.Fatalf("UserTag: %q, %q", a, b)
	}
	if UserTag("bob") == a {
		t.Fatal("two names, one tag")
	}
}

// MatchTOTP names the step whose code matched, within the drift window.
func TestMatchTOTPStep(t *testing.T) {
	secret, _ := NewTOTPSecret()
	now := time.Unix(1700000000, 0)
	for _, d := range []time.Duration{-TOTPPeriod, 0, TOTPPeriod} {
		code, _ := TOTPCode(secret, now.Add(d))
		step, ok := MatchTOTP(secret, code, now)
		if !ok || step != TOTPStep(now.Add(d)) {
			t.Errorf("code at %v: step %d, %v; want %d", d, step, ok, TOTPStep(now.Add(d)))
		}
	}
}
