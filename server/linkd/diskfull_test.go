package linkd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// lockedBuffer is a log sink the test reads while linkd writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted when the test
// ends (after everything registered later, such as the linkd using it, has closed).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test mounts a small tmpfs as linkd's data directory to fill it to the last byte")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the test needs a data directory it can fill to the last byte", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fill writes f until the file system has not one byte left: ever smaller chunks,
// each until ENOSPC, down to single bytes.
func fill(t *testing.T, f *os.File) int64 {
	t.Helper()
	var total int64
	for chunk := 1 << 20; chunk >= 1; chunk /= 2 {
		buf := make([]byte, chunk)
		for {
			n, err := f.Write(buf)
			total += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill: %v", err)
			}
		}
	}
	return total
}

// diskDevice is one kiosk linking through the device flow, as seen by the test.
type diskDevice struct {
	userCode, deviceCode string
	approved, linked     bool
}

// TestDiskFullThenSpaceReturns is issue 11's storage proof: linkd's data directory is a
// small tmpfs. Devices ask for codes and are approved, then the disk is filled to the
// last byte and given back one page at a time while every unlinked device polls once
// per round. Every answer a device sees must be authorization_pending, slow_down or
// its tokens (never server_error or access_denied, which a strict RFC 8628 client
// takes as final), an approval tried while the disk is full answers 503 unavailable
// with Retry-After and goes through once space is back, every approved device ends
// with tokens that work, and the full disk is logged once at ERROR.
func TestDiskFullThenSpaceReturns(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	// zitadel logs each failed request to the default logger: into the same buffer, so
	// a failure shows what linkd saw.
	defaultLogger := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() {
		slog.SetDefault(defaultLogger)
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			t.Logf("last log lines:\n%s", strings.Join(lines[max(len(lines)-20, 0):], "\n"))
		}
	})
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{
		Dir:                dir,
		Clock:              clock,
		DeviceCodeLifetime: 24 * time.Hour,
		Logger:             logger,
	})
	db, ok := in.Store.(*sqlite.DB)
	if !ok {
		t.Fatalf("store is %T, want *sqlite.DB", in.Store)
	}
	ctx := t.Context()
	alice := in.CreateUser(t, "alice", "pw-alice")
	app := devices.NewClient(in.Issuer, oauth2.NewClient(in.Context(ctx), oauth2.StaticTokenSource(in.AppToken(t, "alice", "pw-alice"))))
	userinfo := userinfoEndpoint(t, in)

	const approvedN = 8
	devs := make([]*diskDevice, approvedN+1) // the last one is approved only after the disk filled
	for i := range devs {
		devs[i] = askCode(t, in)
	}
	for _, d := range devs[:approvedN] {
		in.Approve(t, d.userCode, alice.Subject)
		d.approved = true
	}
	extra := devs[approvedN]
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint before filling: %v", err)
	}

	filler, err := os.OpenFile(filepath.Join(dir, "filler"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	filled := fill(t, filler)

	// A person approving while the disk is full is asked to try again in a moment.
	_, err = app.Approve(ctx, extra.userCode, "")
	var ae *devices.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != devices.CodeUnavailable || ae.RetryAfter <= 0 {
		t.Fatalf("approve on a full disk: %v, want 503 %s with Retry-After", err, devices.CodeUnavailable)
	}
	approveRefusals := 1

	size := filled
	rounds, pending, slowDowns := 0, 0, 0
	linked := 0
	for linked < len(devs) {
		if size == 0 {
			t.Fatalf("gave all %d bytes back after %d rounds, yet only %d of %d devices linked (approved: extra %v)",
				filled, rounds, linked, len(devs), extra.approved)
		}
		// Drops of 1 to 7 pages in turn: one page alone is always taken by the first
		// poll's write, while a few pages at once let a request get part of the way
		// (its code consumed, say) and then fail the next write.
		size = max(size-int64(1+rounds%7)*4096, 0)
		if err := filler.Truncate(size); err != nil {
			t.Fatal(err)
		}
		rounds++
		if !extra.approved {
			// What the management API just answered 503 for; through the links service,
			// as the app's access token may have expired on the test clock by now.
			_, err := in.Server.Links().Approve(ctx, links.Caller{Subject: alice.Subject, IP: "127.0.0.1"}, extra.userCode, links.Approval{})
			switch {
			case err == nil:
				extra.approved = true
			case errors.Is(err, store.ErrUnavailable):
				approveRefusals++
			default:
				t.Fatalf("round %d: approve: %v, want success or store.ErrUnavailable", rounds, err)
			}
		}
		for i, d := range devs {
			if d.linked {
				continue
			}
			answer, access := pollOnce(t, in, d.deviceCode)
			switch answer {
			case "authorization_pending":
				pending++
			case "slow_down":
				slowDowns++
			case "":
				if !d.approved {
					t.Fatalf("round %d: device %d got tokens without approval", rounds, i)
				}
				if status := getUserinfo(t, in, userinfo, access); status != http.StatusOK {
					t.Fatalf("round %d: device %d's new access token: userinfo answered %d", rounds, i, status)
				}
				d.linked = true
				linked++
			default:
				t.Fatalf("round %d: device %d (approved %v) answered %q after %d bytes of %d came back "+
					"(linked %d, slow_down %d): a storage fault must answer slow_down, never a final error",
					rounds, i, d.approved, answer, filled-size, filled, linked, slowDowns)
			}
		}
		clock.Advance(10 * time.Second)
	}

	log := logs.String()
	if n := countLines(log, "level=ERROR", "is full: free space"); n != 1 {
		t.Errorf("the full disk was logged at ERROR %d times, want once:\n%s", n, log)
	}
	if n := countLines(log, "level=INFO", "work again"); n < 1 {
		t.Errorf("no INFO line said writes work again:\n%s", log)
	}
	t.Logf("approved %d (+1 after the disk filled, refused %d times meanwhile), linked %d, slow_down answers %d, "+
		"authorization_pending %d, rounds %d, gave back %d of %d bytes",
		approvedN, approveRefusals, linked, slowDowns, pending, rounds, filled-size, filled)
}

// askCode starts the device flow as the kiosk, by hand.
func askCode(t *testing.T, in *linkdtest.Instance) *diskDevice {
	t.Helper()
	resp, err := in.Client.PostForm(in.URL+"/device_authorization", url.Values{
		"client_id": {devices.KioskClientID}, "scope": {"openid offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := jsonDecode(resp, &body); err != nil || resp.StatusCode != http.StatusOK || body.DeviceCode == "" {
		t.Fatalf("device authorization: %d %+v %v", resp.StatusCode, body, err)
	}
	return &diskDevice{userCode: body.UserCode, deviceCode: body.DeviceCode}
}

// pollOnce asks for the device's tokens once: the OAuth error code, or "" and the
// access token.
func pollOnce(t *testing.T, in *linkdtest.Instance, deviceCode string) (string, string) {
	t.Helper()
	resp, err := in.Client.PostForm(in.URL+"/oauth/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {devices.KioskClientID}, "device_code": {deviceCode}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error        string `json:"error"`
		Description  string `json:"error_description"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := jsonDecode(&http.Response{Body: io.NopCloser(bytes.NewReader(raw))}, &body); err != nil {
		return fmt.Sprintf("undecodable %d answer %q", resp.StatusCode, raw), ""
	}
	switch {
	case body.Error != "":
		if body.Error != "authorization_pending" && body.Error != "slow_down" {
			return fmt.Sprintf("%s (%d: %s)", body.Error, resp.StatusCode, body.Description), ""
		}
		return body.Error, ""
	case resp.StatusCode == http.StatusOK && body.AccessToken != "" && body.RefreshToken != "":
		return "", body.AccessToken
	}
	return fmt.Sprintf("%d answer without tokens: %s", resp.StatusCode, raw), ""
}

// userinfoEndpoint reads the userinfo address from discovery.
func userinfoEndpoint(t *testing.T, in *linkdtest.Instance) string {
	t.Helper()
	resp, err := in.Client.Get(in.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	if err := jsonDecode(resp, &d); err != nil || d.Userinfo == "" {
		t.Fatalf("discovery: %+v %v", d, err)
	}
	return d.Userinfo
}

// getUserinfo calls userinfo with an access token and returns the status.
func getUserinfo(t *testing.T, in *linkdtest.Instance, endpoint, access string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// countLines counts the log lines holding every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}
