package main

import (
	"strings"
	"testing"
)

// --smtp-url needs --mail-from; a bad SMTP URL stops serve with an error that never
// shows the password in it; LINKD_SMTP_URL stands in for the flag.
func TestServeMailFlags(t *testing.T) {
	code, _, errOut := runCmd(t, "", "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--smtp-url", "smtp://u:hunter2@mail.example.test")
	if code != exitUsage || !strings.Contains(errOut, "--mail-from") || strings.Contains(errOut, "hunter2") {
		t.Errorf("--smtp-url without --mail-from: %d %q", code, errOut)
	}
	t.Setenv("LINKD_SMTP_URL", "ftp://u:hunter2@mail.example.test")
	t.Setenv("LINKD_MAIL_FROM", "linkd@example.test")
	code, _, errOut = runCmd(t, "", "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "smtp://") || strings.Contains(errOut, "hunter2") {
		t.Errorf("a bad LINKD_SMTP_URL: %d %q", code, errOut)
	}
	code, out, _ := runCmd(t, "", "serve", "--help")
	if code != 0 || !strings.Contains(out, "-smtp-url") || !strings.Contains(out, "-mail-from") {
		t.Errorf("serve --help lacks the mail flags: %s", out)
	}
}
