// Package faultlog logs the storage faults an operator has to act on (a full disk, a
// read-only or unreachable database) once, not once per failed request, and their end
// once, for every store.Store backend alike.
package faultlog

import (
	"log/slog"
	"sync"
	"time"
)

// Kind is a fault the operator has to act on; a backend numbers its own from 1. None
// (0) is no such fault.
type Kind int

// None means the failure is not one the operator has to act on.
const None Kind = 0

// RelogAfter is how long after its ERROR line the same fault is not logged at ERROR
// again: a disk hovering at full while space trickles back (writes failing and working
// by turns) logs one ERROR, one WARN that it is full again and the first recovery of
// each, not a line per flap.
const RelogAfter = 10 * time.Minute

// Log remembers which fault the writes are in. The zero value is ready; Logger nil
// means slog.Default() at the time of logging.
type Log struct {
	Logger *slog.Logger

	mu       sync.Mutex
	current  Kind
	announce bool // the current fault was logged, so its end is too
	loggedAt map[Kind]time.Time
	warned   map[Kind]bool // logged again at WARN since its ERROR
}

func (f *Log) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

// Failed notes a failed write of kind k whose ERROR line is msg (what happened and
// what to do); a fault that starts now is logged at ERROR, or at WARN once when it
// comes back soon after its ERROR. Kind None does nothing.
func (f *Log) Failed(k Kind, msg string, err error) {
	if k == None {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == k {
		return
	}
	f.current = k
	if f.loggedAt == nil {
		f.loggedAt, f.warned = map[Kind]time.Time{}, map[Kind]bool{}
	}
	now := time.Now()
	last, ok := f.loggedAt[k]
	switch {
	case !ok || now.Sub(last) >= RelogAfter:
		f.loggedAt[k], f.warned[k], f.announce = now, false, true
		f.logger().Error(msg, "err", err)
	case !f.warned[k]:
		f.warned[k], f.announce = true, true
		f.logger().Warn(msg+" (again)", "err", err)
	default:
		f.announce = false
	}
}

// Succeeded notes a successful write: the end of a logged fault is logged once, as
// msg at INFO.
func (f *Log) Succeeded(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == None {
		return
	}
	f.current = None
	if f.announce {
		f.logger().Info(msg)
	}
}
