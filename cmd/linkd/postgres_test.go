package main

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
)

// TestPostgresLinksDevices runs the real linkd process on a PostgreSQL database named
// by LINKD_DB (the account made beforehand with `users add --db postgres://…`), links
// two kiosks end to end with x/oauth2's device flow, kills linkd with SIGKILL and
// restarts it on the same database, and then checks every device still holds working
// tokens that refresh, is listed once and was seen. No SQLite file is made.
func TestPostgresLinksDevices(t *testing.T) {
	url := pgtest.DB(t)
	dir := t.TempDir()
	code, out, errOut := runCmd(t, crashPassword+"\n", "users", "add", "--data", dir, "--db", url,
		"--username", "alice", "--password-stdin")
	if code != 0 || !strings.Contains(out, "added user alice") {
		t.Fatalf("users add --db postgres: %d %q %q", code, out, errOut)
	}
	t.Setenv("LINKD_DB", url) // the child linkd inherits it
	p := startLinkd(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app, err := linkdtest.SignInAt(ctx, p.URL, p.Client, nil, "alice", crashPassword, "")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	r := &crashRig{t: t, ctx: ctx, p: p, app: app, kiosk: &oauth2.Config{
		ClientID: devices.KioskClientID,
		Endpoint: oauth2.Endpoint{DeviceAuthURL: p.URL + "/device_authorization", TokenURL: p.URL + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams},
		Scopes: []string{"openid", "profile", "offline_access"},
	}}
	var disc struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	if status := r.getJSON(p.URL+"/.well-known/openid-configuration", "", &disc); status != http.StatusOK || disc.Userinfo == "" {
		t.Fatalf("discovery: %d %+v", status, disc)
	}
	r.userinfo = disc.Userinfo

	devs := r.newDevices(2)
	r.mustApproveAll(devs)
	for _, d := range devs {
		r.collect(d)
		r.refresh(d, 1, func() {})
		if d.tok == nil || d.final != "" {
			t.Fatalf("%s: no tokens (%s)", d.name, d.final)
		}
	}
	// Everything acknowledged lives in PostgreSQL: it survives a SIGKILL of linkd, and
	// the restart finds the schema already migrated.
	p.Kill()
	p.Restart()
	r.verify("postgres", devs)

	if _, err := os.Stat(filepath.Join(dir, "linkd.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("linkd made a SQLite database although LINKD_DB names PostgreSQL (stat: %v)", err)
	}
}

// TestDBFlagRejectsUnknownScheme: --db takes sqlite:PATH or a postgres:// URL only.
func TestDBFlagRejectsUnknownScheme(t *testing.T) {
	code, _, errOut := runCmd(t, "", "users", "list", "--data", t.TempDir(), "--db", "mysql://x")
	if code != exitUsage || !strings.Contains(errOut, "postgres://") {
		t.Fatalf("--db mysql://x: exit %d, %q; want a usage error naming postgres://", code, errOut)
	}
}
