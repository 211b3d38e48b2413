package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// waitForCode waits until the command has printed a code and returns it.
func waitForCode(t *testing.T, out, errOut *syncBuffer) string {
	t.Helper()
	codeRE := regexp.MustCompile(`enter the code:\s+(\S+)`)
	deadline := time.After(15 * time.Second)
	for {
		if m := codeRE.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-out.Wrote():
		case <-deadline:
			t.Fatalf("no code printed; stdout:\n%s\nstderr:\n%s", out, errOut)
		}
	}
}

// TestLinkdeviceAgainstLinkd links the command to a real linkd (trusted through
// --ca-file) by approving its code through the management API, as the app does.
func TestLinkdeviceAgainstLinkd(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "grace", "correct horse battery")
	app := devices.NewClient(in.URL, oauth2.NewClient(in.Context(t.Context()),
		oauth2.StaticTokenSource(in.AppToken(t, "grace", "correct horse battery"))))

	out, errOut := &syncBuffer{}, &syncBuffer{}
	rc := make(chan int, 1)
	go func() {
		rc <- run([]string{"--issuer", in.URL, "--ca-file", in.CAFile, "--device-name", "Build box", "--once"}, out, errOut)
	}()
	code := waitForCode(t, out, errOut)
	if !strings.Contains(out.String(), in.URL+"/link") {
		t.Errorf("verification address not printed:\n%s", out)
	}
	if _, err := app.Approve(t.Context(), code, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-rc:
		if got != 0 || !strings.Contains(out.String(), "Linked to Grace") {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", got, out, errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("not linked; stdout:\n%s", out)
	}
	list, err := app.Devices(t.Context())
	if err != nil || len(list) != 1 || list[0].Name != "Build box" {
		t.Fatalf("devices %+v, %v", list, err)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader goroutine; Wrote
// tells the reader when something was written.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // one slot: written since the last receive
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	n, err := s.write(p)
	select {
	case s.Wrote() <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Wrote receives after each write (writes in between are merged).
func (s *syncBuffer) Wrote() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote == nil {
		s.wrote = make(chan struct{}, 1)
	}
	return s.wrote
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// byUsername lets the example provider find users by username, which its device page
// records as the subject.
type byUsername struct{ storage.UserStore }

func (u byUsername) GetUserByID(id string) *storage.User {
	if usr := u.UserStore.GetUserByID(id); usr != nil {
		return usr
	}
	return u.UserStore.GetUserByUsername(id)
}

// TestLinkdeviceAgainstZitadelExample runs the command against zitadel/oidc's example
// provider: it prints a code and a character QR code, a person approves it on the
// provider's device page, and the command reports the link and exits 0.
func TestLinkdeviceAgainstZitadelExample(t *testing.T) {
	storage.RegisterClients(storage.DeviceClient("device", "secret"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	prev := slog.Default()
	router := exampleop.SetupServer(issuer, storage.NewStorage(byUsername{storage.NewUserStore(issuer)}),
		slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	slog.SetDefault(prev)
	srv := httptest.NewUnstartedServer(router)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	out, errOut := &syncBuffer{}, &syncBuffer{}
	rc := make(chan int, 1)
	go func() {
		rc <- run([]string{"--issuer", issuer, "--client-id", "device", "--client-secret", "secret",
			"--scope", "openid profile", "--once"}, out, errOut)
	}()

	code := waitForCode(t, out, errOut)
	if !strings.Contains(out.String(), "█") && !strings.Contains(out.String(), "▀") {
		t.Errorf("no character QR code printed:\n%s", out)
	}
	if !strings.Contains(out.String(), issuer+"/device") {
		t.Errorf("verification address not printed:\n%s", out)
	}

	b := browsertest.New(issuer, nil)
	if _, err := b.Post("/device/login", url.Values{"user_code": {code}, "username": {"test-user2"}, "password": {"verysecure"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Post("/device/confirm", url.Values{"action": {"allowed"}}); err != nil {
		t.Fatal(err)
	}

	select {
	case got := <-rc:
		if got != 0 || !strings.Contains(out.String(), "Linked to ") {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", got, out, errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("not linked; stdout:\n%s", out)
	}
}
