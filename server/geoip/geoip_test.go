package geoip_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/geoip/geoiptest"
)

func TestPlace(t *testing.T) {
	db, err := geoip.Open(geoiptest.Write(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.Type() != "Linkdesk-Test-City" {
		t.Errorf("type %q", db.Type())
	}
	for _, tc := range []struct {
		ip, want, code string
	}{
		{"203.0.113.7", "Lisbon, Portugal", "PT"},
		{"203.0.113.7:4711", "Lisbon, Portugal", "PT"},
		{"::ffff:203.0.113.9", "Lisbon, Portugal", "PT"},
		{"198.51.100.2", "Bavaria, Germany", "DE"},
		{"2001:db8::1", "Germany", "DE"},
		{"[2001:db8::1]:443", "Germany", "DE"},
		{"192.0.2.1", "", ""}, // not in the database
		{"127.0.0.1", "", ""},
		{"not an address", "", ""},
		{"", "", ""},
	} {
		p := db.Place(tc.ip)
		if p.String() != tc.want || p.CountryCode != tc.code {
			t.Errorf("Place(%q) = %+v (%q), want %q %s", tc.ip, p, p, tc.want, tc.code)
		}
	}
	if p := db.Place("203.0.113.7"); p.City != "Lisbon" || p.Region != "Lisbon" || p.Country != "Portugal" {
		t.Errorf("Lisbon: %+v", p)
	}
}

// Without a database every address is unknown, and nothing fails.
func TestNilDB(t *testing.T) {
	var db *geoip.DB
	var l geoip.Locator = db
	if p := l.Place("203.0.113.7"); p != (geoip.Place{}) {
		t.Errorf("nil DB: %+v", p)
	}
	if err := db.Close(); err != nil || db.Type() != "" {
		t.Errorf("nil DB: %v %q", err, db.Type())
	}
}

// A file that is not a location database is refused at start.
func TestOpenRefusesOtherFiles(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(t.TempDir(), "missing.mmdb")} {
		if _, err := geoip.Open(path); err == nil {
			t.Errorf("Open(%s) succeeded", path)
		}
	}
}

// A lookup allocates little: the record's few strings at most.
func TestPlaceAllocations(t *testing.T) {
	db, err := geoip.Open(geoiptest.Write(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Place("203.0.113.7") // warm the reader's string cache
	if n := testing.AllocsPerRun(100, func() { db.Place("203.0.113.7") }); n > 3 {
		t.Errorf("%v allocations per lookup", n)
	}
}

func BenchmarkPlace(b *testing.B) {
	db, err := geoip.Open(geoiptest.Write(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	b.ReportAllocs()
	for b.Loop() {
		db.Place("203.0.113.7")
	}
}
