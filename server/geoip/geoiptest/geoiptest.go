// Package geoiptest writes a small location database in MaxMind's format for tests,
// so they need no downloaded GeoLite2 file: a few documentation networks with known
// places.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The test networks and what the database says about them.
const (
	// Lisbon is 203.0.113.0/24 (TEST-NET-3): Lisbon, Lisbon region, Portugal (PT).
	Lisbon = "203.0.113.0/24"
	// Bavaria is 198.51.100.0/24 (TEST-NET-2): no city, region Bavaria, Germany (DE).
	Bavaria = "198.51.100.0/24"
	// Germany is 2001:db8::/32 (IPv6 documentation): Germany (DE) only.
	Germany = "2001:db8::/32"
)

// Write writes the test database into a new temporary directory of t and returns its
// path. 192.0.2.0/24 (TEST-NET-1) and everything else are not in it.
func Write(t testing.TB) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "Linkdesk-Test-City",
		Languages:               []string{"en"},
		IncludeReservedNetworks: true, // the documentation networks are reserved
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	names := func(en string) mmdbtype.Map {
		return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(en)}}
	}
	country := func(iso, en string) mmdbtype.Map {
		m := names(en)
		m["iso_code"] = mmdbtype.String(iso)
		return m
	}
	for _, n := range []struct {
		cidr string
		rec  mmdbtype.Map
	}{
		{Lisbon, mmdbtype.Map{"city": names("Lisbon"), "subdivisions": mmdbtype.Slice{names("Lisbon")},
			"country": country("PT", "Portugal")}},
		{Bavaria, mmdbtype.Map{"subdivisions": mmdbtype.Slice{names("Bavaria")}, "country": country("DE", "Germany")}},
		{Germany, mmdbtype.Map{"country": country("DE", "Germany")}},
	} {
		_, network, err := net.ParseCIDR(n.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, n.rec); err != nil {
			t.Fatalf("geoiptest: insert %s: %v", n.cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), "test-city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
