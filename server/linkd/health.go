package linkd

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/linkdesk/linkdesk/server/metrics"
)

// ReadyTimeout bounds the store check of GET /readyz.
const ReadyTimeout = 2 * time.Second

// readiness remembers the last /readyz verdict, so only changes are logged (a load
// balancer asks every few seconds).
type readiness struct{ down atomic.Bool }

// healthz serves GET /healthz: 200 whenever the process serves requests.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz serves GET /readyz: 200 when the store answers a cheap query within
// ReadyTimeout, else 503 with the reason. The store ran its migrations when it was
// opened, before linkd served anything, so a serving linkd has them.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	err := s.cfg.Store.Health(ctx)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		if !s.ready.down.Swap(true) {
			s.cfg.Logger.WarnContext(r.Context(), "not ready: the store is unreachable", "err", err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: the store is unreachable\n"))
		return
	}
	if s.ready.down.Swap(false) {
		s.cfg.Logger.InfoContext(r.Context(), "ready again: the store answers")
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Metrics returns the server's metrics recorder (its own registry).
func (s *Server) Metrics() *metrics.Recorder { return s.metrics }

// OpsHandler serves what operators scrape, for a separate listener (linkd serve
// --metrics-addr): GET /metrics in the Prometheus text format, and /healthz and
// /readyz as on the main handler. The main handler never serves /metrics.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}
