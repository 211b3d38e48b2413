package devices

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewUserCodeIsCanonical(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := NewUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := NormalizeCode(FormatCode(strings.ToLower(c))); err != nil || got != c {
			t.Fatalf("round trip of %q: %q, %v", c, got, err)
		}
		seen[c] = true
	}
	if len(seen) < 195 {
		t.Fatalf("only %d distinct codes in 200", len(seen))
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"BCDF-GHJK":         "BCDFGHJK",
		"bcdf ghjk":         "BCDFGHJK",
		" b-c-d-f-g-h-j-k ": "BCDFGHJK",
	} {
		if got, err := NormalizeCode(in); err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1"} {
		if _, err := NormalizeCode(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzNormalizeCode checks that whatever is typed, NormalizeCode either fails or
// returns 8 letters of the code alphabet that normalise to themselves, and that it
// never panics.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "", "ÄBCD-EFGH", "\u2010BCDFGHJK", "ǅǅǅǅǅǅǅǅ", "ßßßß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeCode(s)
		if err != nil {
			return
		}
		if len(got) != CodeLength || !utf8.ValidString(got) {
			t.Fatalf("%q -> %q", s, got)
		}
		for _, r := range got {
			if !strings.ContainsRune(CodeAlphabet, r) {
				t.Fatalf("%q -> %q has %q", s, got, r)
			}
		}
		if again, err := NormalizeCode(FormatCode(got)); err != nil || again != got {
			t.Fatalf("%q not stable: %q, %v", got, again, err)
		}
	})
}
