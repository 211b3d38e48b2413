// Command linkd is the Linkdesk linking service: an OpenID provider with the device
// authorization grant, the management API for the linkdesk app, and web pages.
//
//	linkd serve   --data DIR --addr 127.0.0.1:8443 [--issuer URL] [--tls-cert F --tls-key F] [--dev] [--db sqlite:PATH] [--code-lifetime 10m]
//	linkd users add --username NAME [--display-name …] [--email …] --password-stdin
//	linkd users totp NAME
//	linkd clients add --id ID --name NAME [--logo-uri …] [--scopes …]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
	"github.com/linkdesk/linkdesk/server/tlsca"
)

// Exit codes: 0 success, 1 runtime failure, 2 usage error.
const (
	exitFail  = 1
	exitUsage = 2
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage:
  linkd serve --data DIR --addr 127.0.0.1:8443 [--issuer URL] [--tls-cert F --tls-key F] [--dev] [--db sqlite:PATH] [--code-lifetime 10m]
  linkd users add --username NAME [--display-name NAME] [--email ADDR] --password-stdin [--data DIR]
  linkd users totp NAME [--data DIR]
  linkd clients add --id ID --name NAME [--logo-uri URL] [--scopes "openid profile offline_access"] [--data DIR]
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) >= 1 && args[0] == "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case len(args) >= 2 && args[0] == "users" && args[1] == "add":
		err = usersAdd(ctx, args[2:], stdin, stdout)
	case len(args) >= 2 && args[0] == "users" && args[1] == "totp":
		err = usersTOTP(ctx, args[2:], stdout)
	case len(args) >= 2 && args[0] == "clients" && args[1] == "add":
		err = clientsAdd(ctx, args[2:], stdout)
	case len(args) >= 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "linkd:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFail
}

// defaultDataDir is the OS's per-user data directory + /linkd: $XDG_DATA_HOME or
// ~/.local/share on Unix, ~/Library/Application Support on macOS, %LOCALAPPDATA% on
// Windows.
func defaultDataDir() string {
	home, _ := os.UserHomeDir()
	switch {
	case runtime.GOOS == "windows" && os.Getenv("LOCALAPPDATA") != "":
		return filepath.Join(os.Getenv("LOCALAPPDATA"), "linkd")
	case runtime.GOOS == "darwin" && home != "":
		return filepath.Join(home, "Library", "Application Support", "linkd")
	case os.Getenv("XDG_DATA_HOME") != "":
		return filepath.Join(os.Getenv("XDG_DATA_HOME"), "linkd")
	case home != "":
		return filepath.Join(home, ".local", "share", "linkd")
	}
	return "linkd-data"
}

type common struct {
	data string
	db   string
}

func newFlags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory")
	fs.StringVar(&c.db, "db", "", "database: sqlite:PATH (default: DIR/linkd.db)")
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageError{usage}
		}
		return usageError{err.Error()}
	}
	return nil
}

// openStore opens the database named by --db (or DIR/linkd.db).
func openStore(ctx context.Context, c common) (store.Store, error) {
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(c.data, "linkd.db")
	switch {
	case c.db == "":
	case strings.HasPrefix(c.db, "sqlite:"):
		path = strings.TrimPrefix(c.db, "sqlite:")
	case strings.HasPrefix(c.db, "postgres://"), strings.HasPrefix(c.db, "postgresql://"):
		return nil, usageError{"PostgreSQL is not supported by this build yet; use --db sqlite:PATH"}
	default:
		return nil, usageError{"--db must be sqlite:PATH"}
	}
	return sqlite.Open(ctx, path)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("serve", &c)
	addr := fs.String("addr", "127.0.0.1:8443", "listen address")
	issuer := fs.String("issuer", "", "issuer URL clients see (default https://ADDR)")
	certFile := fs.String("tls-cert", "", "TLS certificate file")
	keyFile := fs.String("tls-key", "", "TLS key file")
	dev := fs.Bool("dev", false, "seed demo user demo/demo and client demo-tv")
	lifetime := fs.Duration("code-lifetime", 10*time.Minute, "how long a user code lives")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"unexpected argument " + fs.Arg(0)}
	}
	if (*certFile == "") != (*keyFile == "") {
		return usageError{"--tls-cert and --tls-key go together"}
	}
	if *lifetime < time.Minute || *lifetime > 24*time.Hour {
		return usageError{"--code-lifetime must be between 1m and 24h"}
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usageError{"--addr: " + err.Error()}
	}
	if *issuer == "" {
		h := host
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			h = "localhost" // a wildcard bind has no name of its own
		}
		_, port, _ := net.SplitHostPort(*addr)
		*issuer = "https://" + net.JoinHostPort(h, port)
	}
	iu, err := url.Parse(*issuer)
	if err != nil || iu.Scheme != "https" || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return usageError{"--issuer must be an https URL without query or fragment"}
	}
	// The local CA's certificate names the host clients use: the issuer's.
	host = iu.Hostname()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	slog.SetDefault(logger) // zitadel logs request errors to the default logger

	var cert tls.Certificate
	if *certFile != "" {
		if cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
	} else {
		var caPath string
		if cert, caPath, err = tlsca.Ensure(c.data, host); err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
		fmt.Fprintln(stdout, "CA certificate:", caPath)
	}

	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	sessionKey, err := loadOrCreateKey(filepath.Join(c.data, "session.key"))
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	srv, err := linkd.New(ctx, linkd.Config{Issuer: *issuer, Store: st, DeviceCodeLifetime: *lifetime,
		Logger: logger, Dev: *dev, SessionKey: sessionKey})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintln(stdout, "issuer:", strings.TrimRight(*issuer, "/"))
	if *dev {
		fmt.Fprintln(stdout, "dev mode: user demo / password demo, client demo-tv")
	}
	go purge(ctx, st, logger)
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// loadOrCreateKey returns the 32-byte key in path, creating it (mode 0600) on first
// use, so web sessions survive a restart.
func loadOrCreateKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}

// purge deletes expired records every few minutes, keeping a day for "expired" answers
// and rate limits.
func purge(ctx context.Context, st interface {
	Purge(ctx context.Context, before time.Time) error
}, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := st.Purge(ctx, time.Now().Add(-24*time.Hour)); err != nil {
				log.Warn("purge", "err", err)
			}
		}
	}
}

func usersAdd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	var c common
	fs := newFlags("users add", &c)
	username := fs.String("username", "", "username")
	display := fs.String("display-name", "", "display name")
	email := fs.String("email", "", "email address")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usageError{"--username is required"}
	}
	if !*pwStdin {
		return usageError{"--password-stdin is required (the password is read from standard input, never from arguments)"}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return usageError{"the password read from standard input is empty"}
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := linkd.AddUser(ctx, st, linkd.NewUser{Username: *username, DisplayName: *display, Email: *email, Password: password})
	if errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("the username %q is already taken", *username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added user %s (subject %s)\n", u.Username, u.Subject)
	return nil
}

func usersTOTP(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("users totp", &c)
	// Accept the name before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if name == "" {
		return usageError{"usage: linkd users totp NAME"}
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, err := linkd.EnableTOTP(ctx, st, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("there is no user %q", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, accounts.TOTPURI("linkd", name, secret))
	return nil
}

func clientsAdd(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("clients add", &c)
	id := fs.String("id", "", "client id")
	name := fs.String("name", "", "display name")
	logo := fs.String("logo-uri", "", "logo URL")
	scopes := fs.String("scopes", "openid profile offline_access", "scopes it may ask for (space or comma separated)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *name == "" {
		return usageError{"--id and --name are required"}
	}
	if *id == "linkdesk" || *id == "linkdesk-kiosk" {
		return usageError{"the client id " + *id + " is built in"}
	}
	if *logo != "" && !strings.HasPrefix(*logo, "https://") {
		return usageError{"--logo-uri must be an https URL"}
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	cl := store.Client{ID: *id, Name: *name, LogoURI: *logo,
		Scopes:     strings.FieldsFunc(*scopes, func(r rune) bool { return r == ' ' || r == ',' }),
		GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		CreatedAt:  time.Now()}
	if err := st.UpsertClient(ctx, cl); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added client %s (%s)\n", cl.ID, cl.Name)
	return nil
}
