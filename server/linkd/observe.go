package linkd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkdesk/linkdesk/server/metrics"
)

// RequestIDHeader carries a request's id: linkd answers every request with it, and
// takes a caller's only from a trusted proxy (Config.TrustedProxies).
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// requestIDKeyCanonical is RequestIDHeader as http.Header keys it.
var requestIDKeyCanonical = http.CanonicalHeaderKey(RequestIDHeader)

// RequestID is the id of the request whose context ctx is ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// LogHandler wraps h so that every record logged with a request's context (the
// ...Context methods of slog.Logger) carries the request's id as request_id. linkd.New
// wraps Config.Logger with it; wrap the default logger too for libraries that log
// there.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// requestIDs makes request ids: a random per-process prefix and a counter, unique
// across replicas and restarts without a random read per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b) + "-"}
}

func (g *requestIDs) next() string {
	var buf [32]byte
	out := append(buf[:0], g.prefix...)
	out = strconv.AppendUint(out, g.n.Add(1), 36)
	return string(out)
}

// saneRequestID reports whether a proxy's id may be used: 1 to 64 letters, digits and
// - _ . : (so it cannot forge log fields or grow without bound).
func saneRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// fromTrustedPeer reports whether r's direct peer is one of trusted.
func fromTrustedPeer(trusted []netip.Prefix, r *http.Request) bool {
	if len(trusted) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// observer is the outermost layer of linkd's handler: it gives every request an id
// (in the context, for the log lines, and in the X-Request-ID answer header), counts
// and times it by route pattern for the metrics, and writes the access-log line when
// Config.AccessLog is on.
type observer struct {
	next     http.Handler
	ids      *requestIDs
	trusted  []netip.Prefix
	metrics  *metrics.Recorder
	log      *slog.Logger // nil: no access log
	clientIP func(*http.Request) string
}

// recorder notes what a handler answered; pooled, so a request allocates none.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush and FlushError pass flushes on (the event stream's), FlushError with the
// error that tells a stream its client is gone; Unwrap gives http.ResponseController
// the connection's own writer for deadlines.
func (w *recorder) Flush() { _ = w.FlushError() }

func (w *recorder) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := ""
	if v := r.Header.Get(RequestIDHeader); v != "" && saneRequestID(v) && fromTrustedPeer(o.trusted, r) {
		id = v
	} else {
		id = o.ids.next()
	}
	w.Header()[requestIDKeyCanonical] = []string{id} // Set would canonicalise the name again
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	rec := recorders.Get().(*recorder)
	rec.ResponseWriter, rec.status, rec.bytes = w, 0, 0
	defer func() {
		status, bytes := rec.status, rec.bytes
		rec.ResponseWriter = nil
		recorders.Put(rec)
		if status == 0 {
			status = http.StatusOK // the handler wrote nothing: net/http answers 200
		}
		d := time.Since(start)
		route := o.metrics.Route(r.Pattern)
		route.Observe(status, d)
		if o.log != nil {
			name := route.Name()
			if name == "" {
				name = r.Pattern
			}
			o.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("route", name), slog.Int("status", status),
				slog.Duration("duration", d), slog.Int64("bytes", bytes), slog.String("client_ip", o.clientIP(r)))
		}
	}()
	o.next.ServeHTTP(rec, r)
}
