package api

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/linkdesk/linkdesk/server/links"
)

// checkName asserts what every name the links service accepts must satisfy.
func checkName(t *testing.T, name string) {
	t.Helper()
	name, err := links.CleanName(name)
	if err != nil {
		return // refused: the API answers 400
	}
	if name != strings.TrimSpace(name) || name == "" || utf8.RuneCountInString(name) > links.MaxNameLen || !utf8.ValidString(name) {
		t.Fatalf("accepted bad name %q", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			t.Fatalf("accepted control character in %q", name)
		}
	}
}

func FuzzDecodeApprove(f *testing.F) {
	for _, s := range []string{"", " ", "{}", `{"device_name":"TV"}`, `{"device_name":""}`, `{"device_name":"a\u0000b"}`,
		`{"device_name":"  x  "}`, `{"device_name":5}`, `null`, `{} {}`, `{"device_name":"\u202e"}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeApprove(strings.NewReader(body))
		if err != nil {
			if req.DeviceName != "" {
				t.Fatalf("error %v with a name %q", err, req.DeviceName)
			}
			return
		}
		if req.DeviceName != "" {
			checkName(t, req.DeviceName)
		}
	})
}

func FuzzDecodeRename(f *testing.F) {
	for _, s := range []string{`{"name":"Den TV"}`, `{"name":""}`, `{"name":"\t"}`, `{"name":"` + strings.Repeat("é", 65) + `"}`,
		`{"name":"x"}junk`, `[]`, ``, `{"name":"\ud800"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeRename(strings.NewReader(body))
		if err != nil {
			return
		}
		checkName(t, req.Name)
	})
}
