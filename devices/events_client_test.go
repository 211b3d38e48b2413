package devices

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestReadEvents(t *testing.T) {
	stream := ": keep-alive\n\n" +
		"retry: 2500\n\n" +
		"id: 7\nevent: device.linked\ndata: {\"type\":\"device.linked\",\"device\":{\"id\":\"d1\",\"name\":\"TV\"}}\n\n" +
		"event: device.renamed\ndata: {\"device\":\n" + // data split over lines, type from event:
		"data: {\"id\":\"d1\",\"name\":\"Den TV\"}}\n\n" +
		"event: something.else\ndata: {\"type\":\"something.else\"}\n\n" +
		"event: device.unlinked\ndata: not json\n\n" +
		"id: 9\r\nevent: device.unlinked\r\ndata: {\"type\":\"device.unlinked\",\"device\":{\"id\":\"d1\"}}\r\n\r\n" +
		"data: {\"type\":\"device.linked\"" // cut off mid-event: never dispatched
	ch := make(chan Event, 10)
	got, lastID, retry, err := readEvents(context.Background(), strings.NewReader(stream), ch)
	close(ch)
	if !got || lastID != "9" || retry != 2500*time.Millisecond || err != io.EOF {
		t.Fatalf("got=%v lastID=%q retry=%v err=%v", got, lastID, retry, err)
	}
	var evs []Event
	for ev := range ch {
		evs = append(evs, ev)
	}
	if len(evs) != 3 ||
		evs[0].Type != EventLinked || evs[0].Device.Name != "TV" ||
		evs[1].Type != EventRenamed || evs[1].Device.Name != "Den TV" ||
		evs[2].Type != EventUnlinked || evs[2].Device.ID != "d1" {
		t.Fatalf("events = %+v", evs)
	}
}

func TestEventsBackoff(t *testing.T) {
	for n := 1; n < 20; n++ {
		d := eventsBackoff(n, 0)
		if d <= 0 || d > eventsMaxBackoff {
			t.Fatalf("backoff(%d) = %v", n, d)
		}
	}
	if d := eventsBackoff(1, 10*time.Second); d < 10*time.Second {
		t.Fatalf("server retry ignored: %v", d)
	}
}
