package devices

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Reconnect backoff of the events stream.
const (
	eventsMinBackoff = time.Second
	eventsMaxBackoff = 60 * time.Second
)

// EventResync is never sent by linkd: Events delivers it after reopening a
// broken stream, because events sent during the gap are lost (linkd keeps no
// replay log), so a consumer should reload its device list when it sees it.
const EventResync = "stream.resync"

// Events opens the account's server-sent event stream (GET /api/v1/events)
// and delivers each device.linked / device.unlinked / device.renamed event on
// the returned channel. The first connection is made before Events returns,
// so a refusal (signed out, offline) is its error. After that, a broken stream
// is reopened with jittered exponential backoff (honouring the server's retry:
// and sending Last-Event-ID), followed by an EventResync. The channel closes
// when ctx ends or the service refuses the stream for good (401, 403, 404).
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	resp, err := c.openEvents(ctx, "")
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, 16)
	go c.followEvents(ctx, resp, ch)
	return ch, nil
}

func (c *Client) openEvents(ctx context.Context, lastID string) (*http.Response, error) {
	const op = "GET " + APIPrefix + "/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, problemFromResponse(resp, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, &APIError{Status: resp.StatusCode, Code: CodeInternal, Title: "Not an event stream", Detail: ct}
	}
	return resp, nil
}

func (c *Client) followEvents(ctx context.Context, resp *http.Response, ch chan<- Event) {
	defer close(ch)
	var lastID string
	retry := time.Duration(0)
	failures := 0
	for {
		got, id, serverRetry, err := readEvents(ctx, resp.Body, ch)
		resp.Body.Close()
		if id != "" {
			lastID = id
		}
		if serverRetry > 0 {
			retry = serverRetry
		}
		if got {
			failures = 0
		}
		if ctx.Err() != nil {
			return
		}
		slog.Debug("devices: event stream broke; reconnecting", "err", err)
		for {
			failures++
			wait := eventsBackoff(failures, retry)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			resp, err = c.openEvents(ctx, lastID)
			if err == nil {
				select {
				case ch <- Event{Type: EventResync}:
				case <-ctx.Done():
					resp.Body.Close()
					return
				}
				break
			}
			var apiErr *APIError
			if ctx.Err() != nil || (errors.As(err, &apiErr) && !apiErr.ServerFault() && apiErr.Code != CodeRateLimited) {
				slog.Info("devices: event stream closed", "err", err)
				return
			}
			if errors.As(err, &apiErr) && apiErr.RetryAfter > retry {
				retry = apiErr.RetryAfter
			}
		}
	}
}

// eventsBackoff is the wait before reconnection attempt n (1-based): at least
// the server's retry, doubling from a second up to a minute, with jitter.
func eventsBackoff(n int, serverRetry time.Duration) time.Duration {
	d := eventsMinBackoff << min(n-1, 6)
	d = min(d, eventsMaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return max(d, serverRetry)
}

// readEvents parses the text/event-stream body (WHATWG HTML §9.2) and sends
// each known event on ch, until the body ends or ctx is done. It reports
// whether any event arrived, the last event id and the last retry hint.
func readEvents(ctx context.Context, body io.Reader, ch chan<- Event) (got bool, lastID string, retry time.Duration, err error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var name, id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data.Len() > 0 {
				if id != "" {
					lastID = id
				}
				if ev, ok := decodeEvent(name, data.String()); ok {
					select {
					case ch <- ev:
						got = true
					case <-ctx.Done():
						return got, lastID, retry, ctx.Err()
					}
				}
			}
			name, id = "", ""
			data.Reset()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // comment, e.g. a keep-alive
		case "event":
			name = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				id = value
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if sc.Err() != nil {
		return got, lastID, retry, sc.Err()
	}
	return got, lastID, retry, io.EOF
}

// decodeEvent turns one SSE message into an Event; unknown types are dropped.
func decodeEvent(name, data string) (Event, bool) {
	var ev Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		slog.Warn("devices: unreadable event ignored", "event", name, "err", err)
		return Event{}, false
	}
	if ev.Type == "" {
		ev.Type = name
	}
	switch ev.Type {
	case EventLinked, EventUnlinked, EventRenamed:
		return ev, true
	}
	return Event{}, false
}
