// Package geoip names the approximate place of an address from an optional location
// database in MaxMind's format (GeoLite2 City or Country, DB-IP Lite and the like),
// so a person approving a link can see roughly where the request came from. Without a
// database nothing is known and nothing else changes.
package geoip

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/linkdesk/linkdesk/devices"
)

// Place is an address's approximate place; the zero Place means unknown.
type Place = devices.Place

// Locator names the approximate place of an address ("" or unparsable: unknown).
type Locator interface {
	Place(ip string) Place
}

// DB is an opened location database. Lookups read the memory-mapped file and are
// safe for concurrent use. A nil *DB knows no places.
type DB struct {
	r *maxminddb.Reader
}

// Open maps the database at path. It fails for a file that is not a MaxMind-format
// database, so a wrong --geoip-db is reported at start rather than showing nothing.
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: open %s: %w", path, err)
	}
	return &DB{r: r}, nil
}

// Type is the database's own name for its kind of records, such as "GeoLite2-City".
func (d *DB) Type() string {
	if d == nil {
		return ""
	}
	return d.r.Metadata.DatabaseType
}

// Close unmaps the database; Place knows nothing afterwards.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	return d.r.Close()
}

// name is a localized name; only English is read.
type name struct {
	En string `maxminddb:"en"`
}

// record is the part of a City or Country record a Place needs (the two formats
// share it; DB-IP Lite uses the same names).
type record struct {
	City struct {
		Names name `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names name `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   name   `maxminddb:"names"`
	} `maxminddb:"country"`
}

// Place is ip's approximate place: city (or else the largest region) and country, in
// English; the zero Place when ip is not an address, is not in the database, or d is
// nil. ip may carry a port ("203.0.113.7:4711").
func (d *DB) Place(ip string) Place {
	if d == nil || ip == "" {
		return Place{}
	}
	addr, ok := parse(ip)
	if !ok {
		return Place{}
	}
	res := d.r.Lookup(addr)
	if !res.Found() {
		return Place{}
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		return Place{}
	}
	p := Place{City: rec.City.Names.En, Country: rec.Country.Names.En, CountryCode: rec.Country.ISOCode}
	if len(rec.Subdivisions) > 0 {
		p.Region = rec.Subdivisions[0].Names.En
	}
	return p
}

func parse(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
