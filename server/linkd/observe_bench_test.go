package linkd

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/server/metrics"
)

// BenchmarkObserver measures what the request observer (id, metrics, no access log)
// adds to one request over a handler that answers at once, as a poll's answer would.
func BenchmarkObserver(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"authorization_pending"}`)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /oauth/token", bare)
	o := &observer{next: mux, ids: newRequestIDs(), metrics: metrics.New(), clientIP: func(*http.Request) string { return "" }}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"mux", mux}, {"observed", o}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(""))
				c.h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
