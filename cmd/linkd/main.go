// Command linkd is the Linkdesk linking service: an OpenID provider with the device
// authorization grant, the management API for the linkdesk app, and web pages.
//
//	linkd serve   --data DIR --addr 127.0.0.1:8443 [--issuer URL] [--tls-cert F --tls-key F] [--dev] [--db sqlite:PATH|postgres://…] [--code-lifetime 10m]
//	              [--poll-interval 5s] [--lost-answer-window 60s] [--trusted-proxy CIDR[,CIDR…]]
//	              [--metrics-addr HOST:PORT] [--access-log]
//	              [--geoip-db FILE.mmdb]
//	linkd users add --username NAME [--display-name …] [--email …] --password-stdin
//	linkd users list
//	linkd users totp [--off] NAME
//	linkd clients add --id ID --name NAME [--logo-uri …] [--scopes …] [--device-flow=false] [--allow-network CIDR]…
//	                  [--approve-same-network] [--max-devices N] [--unlink-after 720h]
//	linkd clients update --id ID [any flag of add: only those given change]
//	linkd clients list
//	linkd keys rotate [--sign-after 30s]
//
// DIR holds secrets.key, the key that seals access tokens and encrypts signing keys and
// TOTP secrets in the database: back it up with the database (a database without its
// secrets.key keeps its accounts and links but loses second factors and live tokens),
// and give replicas the same file.
//
// Every flag of linkd serve, and --data and --db of every command, can also be set
// with an environment variable: LINKD_ and the flag's name in upper case with _ for -
// (LINKD_ADDR, LINKD_TRUSTED_PROXY, …); a flag on the command line wins.
//
// `linkd --help` lists the commands and `linkd COMMAND --help` describes one's flags.
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
	"text/tabwriter"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/termqr"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/mail"
	"github.com/linkdesk/linkdesk/server/provider"
	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/postgres"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
	"github.com/linkdesk/linkdesk/server/tlsca"
)

// Exit codes: 0 success, 1 runtime failure, 2 usage error.
const (
	exitFail  = 1
	exitUsage = 2
)

// usageError is a mistake in the command line; run prints it with the command's help.
type usageError struct{ msg, help string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one subcommand: its words, the synopsis of its arguments, what it does in
// one line for the overview, and how to run it.
type command struct {
	name     string // e.g. "users add"
	synopsis string // after "linkd NAME"
	summary  string
	run      func(ctx context.Context, args []string, t terminal) error
}

// terminal is where a command reads and writes.
type terminal struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// commands is set in init: help texts read it, and the commands use help texts.
var commands []command

func init() {
	commands = []command{
		{"serve", "[--addr HOST:PORT] [--issuer URL] [--tls-cert F --tls-key F] [--dev] [--data DIR] [--metrics-addr HOST:PORT] [--access-log]",
			"run the linking service over HTTPS",
			func(ctx context.Context, args []string, t terminal) error {
				return serve(ctx, args, t.stdout, t.stderr)
			}},
		{"users add", "--username NAME [--display-name NAME] [--email ADDR] --password-stdin [--data DIR]",
			"create an account; the password is read from standard input",
			func(ctx context.Context, args []string, t terminal) error {
				return usersAdd(ctx, args, t.stdin, t.stdout)
			}},
		{"users list", "[--data DIR]",
			"list the accounts and whether each has a one-time-code second factor",
			func(ctx context.Context, args []string, t terminal) error { return usersList(ctx, args, t.stdout) }},
		{"users totp", "[--off] NAME [--data DIR]",
			"turn on sign-in with one-time codes from an authenticator app (prints a QR code to scan), or --off to turn it off",
			func(ctx context.Context, args []string, t terminal) error { return usersTOTP(ctx, args, t.stdout) }},
		{"clients add", "--id ID --name NAME [--logo-uri URL] [--scopes LIST] [POLICY FLAGS] [--data DIR]",
			"register a device client (a TV or console app) that may use the device flow",
			func(ctx context.Context, args []string, t terminal) error { return clientsAdd(ctx, args, t.stdout) }},
		{"clients update", "--id ID [--name NAME] [--logo-uri URL] [--scopes LIST] [POLICY FLAGS] [--data DIR]",
			"change a device client: only the flags given change",
			func(ctx context.Context, args []string, t terminal) error { return clientsUpdate(ctx, args, t.stdout) }},
		{"clients list", "[--data DIR]",
			"list the device clients and the rules each has",
			func(ctx context.Context, args []string, t terminal) error { return clientsList(ctx, args, t.stdout) }},
		{"keys rotate", "[--sign-after 30s] [--data DIR]",
			"add a new token-signing key; every linkd on the database publishes it within " + provider.KeyRefresh.String() +
				" and signs with it after --sign-after, and the old key stays published until its ID tokens expire",
			func(ctx context.Context, args []string, t terminal) error { return keysRotate(ctx, args, t.stdout) }},
	}
}

// overview is what `linkd --help` prints.
func overview() string {
	var b strings.Builder
	b.WriteString("linkd is the Linkdesk linking service.\n\nusage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  linkd %-12s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'linkd COMMAND --help' (for example 'linkd users totp --help') for a command's flags.\n")
	return b.String()
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, overview())
		return exitUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, overview())
		return 0
	}
	var cmd *command
	rest := args
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == commands[i].name {
			cmd, rest = &commands[i], args[len(words):]
			break
		}
	}
	if cmd == nil {
		if len(args) >= 2 && isHelp(args[1]) {
			fmt.Fprint(stdout, overview()) // "linkd users --help"
			return 0
		}
		fmt.Fprintf(stderr, "linkd: unknown command %q\n\n%s", strings.Join(args, " "), overview())
		return exitUsage
	}
	err := cmd.run(ctx, rest, terminal{stdin, stdout, stderr})
	var he helpRequested
	if errors.As(err, &he) {
		fmt.Fprint(stdout, he.text)
		return 0
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "linkd:", err)
	var ue usageError
	if errors.As(err, &ue) {
		if ue.help != "" {
			fmt.Fprint(stderr, "\n"+ue.help)
		}
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

// helpRequested carries a command's help text for run to print on standard output.
type helpRequested struct{ text string }

func (helpRequested) Error() string { return "help requested" }

// newFlags returns the flag set of the command name with the flags every command has.
func newFlags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory (keys, certificates and the database)")
	fs.StringVar(&c.db, "db", "", "database: sqlite:PATH, or postgres://USER@HOST/DB for several replicas on one "+
		"PostgreSQL (default DIR/linkd.db)")
	return fs
}

// envName is the environment variable of the flag name: LINKD_ and the name in upper
// case with _ for - (trusted-proxy: LINKD_TRUSTED_PROXY).
func envName(flag string) string {
	return "LINKD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// hasEnv reports whether fs's flag f can be set from the environment: every flag of
// linkd serve, and --data and --db of every command.
func hasEnv(fs *flag.FlagSet, f *flag.Flag) bool {
	return fs.Name() == "serve" || f.Name == "data" || f.Name == "db"
}

// applyEnv sets every flag of fs that the command line left unset and hasEnv allows
// from its environment variable (envName), so flags win over the environment.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || !hasEnv(fs, f) {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{msg: fmt.Sprintf("$%s: invalid value %q for --%s: %v", envName(f.Name), v, f.Name, e), help: help(fs)}
			}
		}
	})
	return err
}

// help renders the usage of fs's command: synopsis, summary and every flag.
func help(fs *flag.FlagSet) string {
	var b strings.Builder
	for _, c := range commands {
		if c.name == fs.Name() {
			fmt.Fprintf(&b, "usage: linkd %s %s\n\n%s.\n", c.name, c.synopsis, upperFirst(c.summary))
		}
	}
	b.WriteString("\nflags (a flag given on the command line wins over its environment variable):\n")
	fs.VisitAll(func(f *flag.Flag) {
		if suffix := " (env " + envName(f.Name) + ")"; hasEnv(fs, f) && !strings.HasSuffix(f.Usage, suffix) {
			f.Usage += suffix
		}
	})
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseFlagsOnly is parse for a command that takes flags alone: a word left over is
// refused, with the command's help, rather than ignored.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{msg: "unexpected argument " + fs.Arg(0), help: help(fs)}
	}
	return nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpRequested{help(fs)}
		}
		return usageError{msg: err.Error(), help: help(fs)}
	}
	return applyEnv(fs)
}

// openStore opens the database named by --db (else $LINKD_DB, else DIR/linkd.db):
// SQLite, or PostgreSQL for a postgres:// or postgresql:// URL, encrypting its secrets
// with a key derived from DIR/secrets.key (made on first use; replicas on one
// PostgreSQL need the same file).
func openStore(ctx context.Context, c common) (store.Store, error) {
	st, _, err := openStoreKey(ctx, c)
	return st, err
}

// openStoreKey is openStore that also returns the secrets key.
func openStoreKey(ctx context.Context, c common) (store.Store, []byte, error) {
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data directory: %w", err)
	}
	if err := sealing.PrivateDir(c.data); err != nil {
		return nil, nil, err
	}
	secrets, err := sealing.LoadOrCreateKey(filepath.Join(c.data, "secrets.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("secrets key: %w", err)
	}
	storeKey := sealing.Derive(secrets, sealing.LabelStore)
	path := filepath.Join(c.data, "linkd.db")
	switch {
	case c.db == "":
	case strings.HasPrefix(c.db, "sqlite:"):
		path = strings.TrimPrefix(c.db, "sqlite:")
	case strings.HasPrefix(c.db, "postgres://"), strings.HasPrefix(c.db, "postgresql://"):
		db, err := postgres.Open(ctx, c.db, postgres.WithSecretsKey(storeKey))
		if err != nil {
			return nil, nil, err
		}
		return db, secrets, nil
	default:
		return nil, nil, usageError{msg: "--db must be sqlite:PATH or postgres://…"}
	}
	db, err := sqlite.Open(ctx, path, sqlite.WithSecretsKey(storeKey))
	if err != nil {
		return nil, nil, err
	}
	return db, secrets, nil
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("serve", &c)
	addr := fs.String("addr", "127.0.0.1:8443", "address to listen on; use a LAN address to try the phone pages from a phone")
	issuer := fs.String("issuer", "", "issuer URL clients see (default https://ADDR)")
	certFile := fs.String("tls-cert", "", "TLS certificate file (PEM); without --tls-cert/--tls-key linkd makes a local CA and certificate in DIR")
	keyFile := fs.String("tls-key", "", "TLS private key file (PEM) of --tls-cert")
	dev := fs.Bool("dev", false, "also seed the demo user demo (password demo) and the demo TV client demo-tv, for trying things out")
	lifetime := fs.Duration("code-lifetime", 10*time.Minute, "how long a user code lives")
	pollInterval := fs.Duration("poll-interval", 5*time.Second, "how often a device waiting for approval may ask for its tokens (whole seconds, 1s to 60s)")
	lostAnswer := fs.Duration("lost-answer-window", time.Minute,
		"how long a device may repeat a token request whose answer it never received (a crash, a dropped connection) and still get working tokens (up to 10m)")
	nearby := fs.Bool("nearby-devices", true, "offer \"Devices waiting near you\": signed-in people see pending requests from their own network and "+
		"pick theirs by the code it shows")
	var proxies stringList
	fs.Var(&proxies, "trusted-proxy", "CIDR[,CIDR…] of reverse proxies whose X-Forwarded-For (or Forwarded) header names the caller; "+
		"repeatable. Without it the headers are ignored and the connection's address is the caller")
	metricsAddr := fs.String("metrics-addr", "", "HOST:PORT to serve /metrics (Prometheus), /healthz and /readyz on, "+
		"in plain HTTP without authentication: bind it to a private address. Default off; the main address never serves /metrics")
	accessLog := fs.Bool("access-log", false, "log one line per request (method, route, status, duration, bytes, request id, "+
		"client address); off, routine requests are not logged")
	smtpURL := fs.String("smtp-url", "", "email a notice to the account on every new link through this SMTP server: "+
		"smtp://USER:PASSWORD@HOST:PORT (STARTTLS when offered) or smtps://… (default: none, no email)")
	mailFrom := fs.String("mail-from", "", "sender address of the email notices")
	geoDB := fs.String("geoip-db", "", "location database in MaxMind's format (GeoLite2 City or Country, DB-IP Lite); "+
		"the confirm pages and the API then name the approximate place a request and a linked device came from (default: none)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *smtpURL != "" && *mailFrom == "" {
		return usageError{msg: "--smtp-url needs --mail-from (the sender address of the notices)", help: help(fs)}
	}
	trusted, err := linkd.ParseTrustedProxies(proxies)
	if err != nil {
		return usageError{msg: "--trusted-proxy: " + err.Error(), help: help(fs)}
	}
	if (*certFile == "") != (*keyFile == "") {
		return usageError{msg: "--tls-cert and --tls-key go together"}
	}
	if *lifetime < time.Minute || *lifetime > 24*time.Hour {
		return usageError{msg: "--code-lifetime must be between 1m and 24h"}
	}
	// RFC 8628 §3.2 gives the interval to devices in whole seconds.
	if *pollInterval < time.Second || *pollInterval > time.Minute || *pollInterval%time.Second != 0 {
		return usageError{msg: "--poll-interval must be a whole number of seconds between 1s and 60s", help: help(fs)}
	}
	if *lostAnswer <= 0 || *lostAnswer > 10*time.Minute {
		return usageError{msg: "--lost-answer-window must be more than 0 and at most 10m", help: help(fs)}
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usageError{msg: "--addr: " + err.Error()}
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
		return usageError{msg: "--issuer must be an https URL without query or fragment"}
	}
	// The local CA's certificate names the host clients use: the issuer's.
	host = iu.Hostname()
	// Every line logged for a request carries its request_id.
	logger := slog.New(linkd.LogHandler(slog.NewTextHandler(stderr, nil)))
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

	var places geoip.Locator
	if *geoDB != "" {
		gdb, err := geoip.Open(*geoDB)
		if err != nil {
			return fmt.Errorf("--geoip-db: %w", err)
		}
		defer gdb.Close()
		places = gdb
		logger.Info("location database", "path", *geoDB, "type", gdb.Type())
	}

	st, secrets, err := openStoreKey(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	sessionKey, err := loadOrCreateKey(filepath.Join(c.data, "session.key"))
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	// Replicas on one PostgreSQL share their events (approvals, links) through it.
	var relay events.Relay
	if pg, ok := st.(*postgres.DB); ok {
		if relay, err = postgres.NewRelay(pg, c.db, logger); err != nil {
			return err
		}
	}
	srv, err := linkd.New(ctx, linkd.Config{Issuer: *issuer, Store: st, DeviceCodeLifetime: *lifetime,
		PollInterval: *pollInterval, LostAnswerWindow: *lostAnswer, Logger: logger, Dev: *dev, SessionKey: sessionKey,
		SecretsKey: secrets, TrustedProxies: trusted, Relay: relay, AccessLog: *accessLog,
		Mail: mail.Settings{URL: *smtpURL, From: *mailFrom}, NearbyOff: !*nearby, Places: places})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	ln = srv.Listener(ln) // at most linkd.DefaultMaxConnections at once
	// The operators' listener is bound before linkd says it serves.
	var mln net.Listener
	if *metricsAddr != "" {
		if mln, err = net.Listen("tcp", *metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	hs := srv.HTTPServer(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		slog.NewLogLogger(logger.Handler(), slog.LevelWarn))
	fmt.Fprintln(stdout, "issuer:", strings.TrimRight(*issuer, "/"))
	if *dev {
		fmt.Fprintln(stdout, "dev mode: user demo / password demo, client demo-tv")
	}
	go purge(ctx, st, logger)
	errc := make(chan error, 2)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	var ms *http.Server
	if mln != nil {
		ms = &http.Server{Handler: srv.OpsHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		go func() { errc <- ms.Serve(mln) }()
		fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", mln.Addr())
	}
	select {
	case err := <-errc:
		hs.Close()
		if ms != nil {
			ms.Close()
		}
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ms != nil {
		_ = ms.Shutdown(sctx)
	}
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
// and rate limits, and retires signing keys replaced more than a day ago (the ID tokens
// they signed live an hour).
func purge(ctx context.Context, st interface {
	Purge(ctx context.Context, before time.Time) error
	RetireSigningKeys(ctx context.Context, before time.Time) (int, error)
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
			if n, err := st.RetireSigningKeys(ctx, time.Now().Add(-24*time.Hour)); err != nil {
				log.Warn("retire signing keys", "err", err)
			} else if n > 0 {
				log.Info("retired signing keys", "count", n)
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
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usageError{msg: "--username is required"}
	}
	if !*pwStdin {
		return usageError{msg: "--password-stdin is required (the password is read from standard input, never from arguments)"}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return usageError{msg: "the password read from standard input is empty"}
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

func usersList(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("users list", &c)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		fmt.Fprintln(stdout, "no users yet; add one with: linkd users add --username NAME --password-stdin")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tDISPLAY NAME\tEMAIL\tONE-TIME CODES\tCREATED")
	for _, u := range users {
		totp := "off"
		if u.TOTPSecret != "" {
			totp = "on"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.DisplayName, u.Email, totp, u.CreatedAt.Local().Format(time.DateOnly))
	}
	return tw.Flush()
}

func usersTOTP(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("users totp", &c)
	off := fs.Bool("off", false, "turn one-time codes off: the account signs in with its password alone")
	// The name may come before, between or after the flags.
	var names []string
	for {
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		names, args = append(names, fs.Arg(0)), fs.Args()[1:]
	}
	if len(names) > 1 {
		return usageError{msg: "one username at a time", help: help(fs)}
	}
	if len(names) == 0 {
		return usageError{msg: "the username is missing", help: help(fs)}
	}
	name := names[0]
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	if *off {
		err := linkd.DisableTOTP(ctx, st, name)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("there is no user %q", name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "One-time codes are off for %s: it signs in with its password alone.\n", name)
		return nil
	}
	secret, err := linkd.EnableTOTP(ctx, st, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("there is no user %q", name)
	}
	if err != nil {
		return err
	}
	uri := accounts.TOTPURI("linkd", name, secret)
	fmt.Fprintf(stdout, "One-time codes are on for %s. From now on signing in asks for the password and then\n"+
		"the 6-digit code an authenticator app shows (a new one every 30 seconds).\n\n"+
		"In the authenticator app (for example Aegis, Google Authenticator, 1Password), add an\n"+
		"account and scan this QR code:\n\n", name)
	if q, err := termqr.String(uri); err == nil {
		fmt.Fprintln(stdout, q)
	}
	fmt.Fprintf(stdout, "If you cannot scan it, enter this key by hand (time-based, 6 digits, 30 seconds):\n\n    %s\n\n"+
		"or open this link on the phone:\n\n    %s\n\n"+
		"Running this again replaces the key (the old one stops working); "+
		"'linkd users totp --off %s' turns one-time codes off.\n", secret, uri, name)
	return nil
}

// clientFlags are the flags of clients add and update.
type clientFlags struct {
	id, name, logo, scopes  *string
	deviceFlow, sameNetwork *bool
	networks                stringList
	maxDevices              *int
	unlinkAfter             *time.Duration
}

func newClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{
		id:     fs.String("id", "", "client id"),
		name:   fs.String("name", "", "display name"),
		logo:   fs.String("logo-uri", "", "logo URL"),
		scopes: fs.String("scopes", "openid profile offline_access", "scopes it may ask for (space or comma separated)"),
		deviceFlow: fs.Bool("device-flow", true, "whether devices may ask to link; --device-flow=false refuses new requests "+
			"(unauthorized_client) while links already made keep working"),
		sameNetwork: fs.Bool("approve-same-network", false, "approve only from the device's own network (the same address, /24 or /64)"),
		maxDevices:  fs.Int("max-devices", 0, "most devices of this client one account may link; 0: no limit"),
		unlinkAfter: fs.Duration("unlink-after", 0, "unlink a device unused for this long (e.g. 720h for 30 days; at least 1h); 0: never"),
	}
	fs.Var(&f.networks, "allow-network", "CIDR[,CIDR…] devices may ask to link from (repeatable); none: anywhere. "+
		"--allow-network \"\" on update removes the limit")
	return f
}

// apply sets the policy fields whose flags were given (all of them when all).
func (f *clientFlags) apply(fs *flag.FlagSet, cl *store.Client, all bool) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	given := func(name string) bool { return all || set[name] }
	if given("name") {
		cl.Name = *f.name
	}
	if given("logo-uri") {
		if *f.logo != "" && !strings.HasPrefix(*f.logo, "https://") {
			return usageError{msg: "--logo-uri must be an https URL", help: help(fs)}
		}
		cl.LogoURI = *f.logo
	}
	if given("scopes") {
		cl.Scopes = strings.FieldsFunc(*f.scopes, func(r rune) bool { return r == ' ' || r == ',' })
	}
	if given("device-flow") {
		cl.Policy.DeviceFlowOff = !*f.deviceFlow
	}
	if given("allow-network") {
		nets, err := links.ParseNetworks(f.networks)
		if err != nil {
			return usageError{msg: "--allow-network: " + err.Error(), help: help(fs)}
		}
		cl.Policy.AllowedNetworks = nets
	}
	if given("approve-same-network") {
		cl.Policy.ApproveSameNetwork = *f.sameNetwork
	}
	if given("max-devices") {
		if *f.maxDevices < 0 {
			return usageError{msg: "--max-devices must be 0 (no limit) or more", help: help(fs)}
		}
		cl.Policy.MaxDevices = *f.maxDevices
	}
	if given("unlink-after") {
		// At least an access token's lifetime, so a token issued at the last use has
		// expired by the time the link is idle.
		if *f.unlinkAfter != 0 && *f.unlinkAfter < provider.DefaultAccessTokenLifetime {
			return usageError{msg: "--unlink-after must be 0 (never) or at least " + provider.DefaultAccessTokenLifetime.String(), help: help(fs)}
		}
		cl.Policy.UnlinkAfter = *f.unlinkAfter
	}
	return nil
}

func clientsAdd(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("clients add", &c)
	f := newClientFlags(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *f.id == "" || *f.name == "" {
		return usageError{msg: "--id and --name are required"}
	}
	if *f.id == devices.AppClientID || *f.id == devices.KioskClientID {
		return usageError{msg: "the client id " + *f.id + " is built in"}
	}
	cl := store.Client{ID: *f.id,
		GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		CreatedAt:  time.Now()}
	if err := f.apply(fs, &cl, true); err != nil {
		return err
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.UpsertClient(ctx, cl); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added client %s (%s)%s\n", cl.ID, cl.Name, policyWords(cl.Policy, ": "))
	return nil
}

// clientsUpdate changes the fields of a registered client whose flags are given.
func clientsUpdate(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("clients update", &c)
	f := newClientFlags(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *f.id == "" {
		return usageError{msg: "--id is required", help: help(fs)}
	}
	if *f.id == devices.AppClientID || *f.id == devices.KioskClientID {
		return usageError{msg: "the client id " + *f.id + " is built in and has no rules to change"}
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	cl, err := st.ClientByID(ctx, *f.id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("there is no client %q; add it with: linkd clients add --id %s --name NAME", *f.id, *f.id)
	}
	if err != nil {
		return err
	}
	if err := f.apply(fs, &cl, false); err != nil {
		return err
	}
	if cl.Name == "" {
		return usageError{msg: "--name cannot be empty", help: help(fs)}
	}
	if err := st.UpsertClient(ctx, cl); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "updated client %s (%s)%s\n", cl.ID, cl.Name, policyWords(cl.Policy, ": "))
	return nil
}

// clientsList prints every registered device client with its rules.
func clientsList(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("clients list", &c)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	clients, err := st.ListClients(ctx)
	if err != nil {
		return err
	}
	if len(clients) == 0 {
		fmt.Fprintln(stdout, "no device clients yet; add one with: linkd clients add --id ID --name NAME")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tDEVICE FLOW\tALLOWED NETWORKS\tAPPROVE\tMAX DEVICES\tUNLINK AFTER\tSCOPES")
	for _, cl := range clients {
		p := cl.Policy
		flow, nets, approve, maxDev, after := "on", "anywhere", "anywhere", "no limit", "never"
		if p.DeviceFlowOff {
			flow = "off"
		}
		if len(p.AllowedNetworks) > 0 {
			nets = strings.Join(p.AllowedNetworks, ",")
		}
		if p.ApproveSameNetwork {
			approve = "same network"
		}
		if p.MaxDevices > 0 {
			maxDev = fmt.Sprint(p.MaxDevices)
		}
		if p.UnlinkAfter > 0 {
			after = p.UnlinkAfter.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, cl.Name, flow, nets, approve, maxDev, after, strings.Join(cl.Scopes, " "))
	}
	return tw.Flush()
}

// policyWords says what p restricts, after sep; "" when nothing.
func policyWords(p store.ClientPolicy, sep string) string {
	var w []string
	if p.DeviceFlowOff {
		w = append(w, "device flow off")
	}
	if len(p.AllowedNetworks) > 0 {
		w = append(w, "devices may ask from "+strings.Join(p.AllowedNetworks, ", "))
	}
	if p.ApproveSameNetwork {
		w = append(w, "approve only from the device's network")
	}
	if p.MaxDevices > 0 {
		w = append(w, fmt.Sprintf("at most %d devices per account", p.MaxDevices))
	}
	if p.UnlinkAfter > 0 {
		w = append(w, "unlinked after "+p.UnlinkAfter.String()+" unused")
	}
	if len(w) == 0 {
		return ""
	}
	return sep + strings.Join(w, "; ")
}

// keysRotate adds a new signing key (linkd keys rotate). It signs only after
// --sign-after, by when every replica on the database publishes it.
func keysRotate(ctx context.Context, args []string, stdout io.Writer) error {
	var c common
	fs := newFlags("keys rotate", &c)
	after := fs.Duration("sign-after", provider.SignAfter,
		"how long the new key is published before it signs (at least "+provider.MinSignAfter.String()+
			"); make it longer than any client caches the key set without fetching it again for an unknown key")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *after < provider.MinSignAfter {
		return usageError{msg: "--sign-after must be at least " + provider.MinSignAfter.String() +
			", so every linkd publishes the key before one signs with it", help: help(fs)}
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	k, err := provider.RotateSigningKeyAfter(ctx, st, now, *after)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s: published now, signs from %s (in %s); older keys are removed a day after that\n",
		k.ID, k.NotBefore.Format(time.RFC3339), k.NotBefore.Sub(now).Round(time.Second))
	return nil
}
