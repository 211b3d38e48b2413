package provider

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestNewDeviceCode: a device code is its creation time (16 hex digits, so later codes
// sort after earlier ones) and a dot before 256 random bits, fresh for every code.
func TestNewDeviceCode(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b := newDeviceCode(now), newDeviceCode(now.Add(time.Nanosecond))
	prefix, random, ok := strings.Cut(a, ".")
	if !ok || len(prefix) != 16 || prefix != strings.ToLower(prefix) {
		t.Fatalf("code %q: want 16 lowercase hex digits and a dot first", a)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(random); err != nil || len(raw) != 32 {
		t.Fatalf("random part of %q: %d bytes, %v; want 32", a, len(raw), err)
	}
	if a >= b {
		t.Fatalf("a later code sorts first: %q >= %q", a, b)
	}
	if _, rb, _ := strings.Cut(newDeviceCode(now), "."); rb == random {
		t.Fatal("two codes made at the same time share their random part")
	}
}
