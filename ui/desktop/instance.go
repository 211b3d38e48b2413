// Package desktop ties the Linkdesk app into the person's desktop session
// without Fyne: the single-instance handoff (one window per person) and
// registering the app as the handler of linkdesk:// links.
//
// One Linkdesk window per person: a later launch (say, the OS opening a
// linkdesk:// link) hands its link to the running app over a Unix socket in a
// directory only this user can enter, and exits. The running app brings its
// window forward with the code filled in. A link received this way is treated
// exactly like a pasted one: checked against the configured issuer and never
// approved without the person's click.
package desktop

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// handOffTimeout bounds each step of a handoff, so a hung instance can't hang
// the new launch.
const handOffTimeout = 3 * time.Second

// maxHandOff is the largest message accepted; a link is far smaller.
const maxHandOff = 8 << 10

// handOffMessage is what a later launch sends: the link to open ("" just
// brings the window forward).
type handOffMessage struct {
	Open string `json:"open"`
}

// ErrNoInstance means no running Linkdesk answered on the socket; the caller
// should become the running instance.
var ErrNoInstance = errors.New("no running Linkdesk window")

// SocketPath is the per-user socket of the running app, in a private directory
// it creates: in $XDG_RUNTIME_DIR when set (per-login, private), else the user
// cache dir.
func SocketPath() (string, error) {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		var err error
		if dir, err = os.UserCacheDir(); err != nil {
			return "", err
		}
	}
	dir = filepath.Join(dir, "linkdesk")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// MkdirAll keeps an existing directory's mode; only this user may reach the socket.
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(dir, "app.sock"), nil
}

// handOff gives link to the Linkdesk already running on path. It returns
// ErrNoInstance when none is running, so the caller becomes the instance.
func HandOff(path, link string) error {
	conn, err := net.DialTimeout("unix", path, handOffTimeout)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoInstance, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(handOffTimeout))
	if err := json.NewEncoder(conn).Encode(handOffMessage{Open: link}); err != nil {
		return fmt.Errorf("send link to the running Linkdesk: %w", err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSpace(reply) != "ok" {
		return fmt.Errorf("the running Linkdesk did not take the link (%q): %v", reply, err)
	}
	return nil
}

// LinkListener is the running app's side of the socket; Close it on quit.
type LinkListener struct {
	ln   net.Listener
	path string
	wg   sync.WaitGroup
}

// ListenForLinks makes this process the running instance on path; open gets
// each link a later launch hands over (on the listener's goroutine). When
// another instance answers on path first, it returns ErrAlreadyRunning.
func ListenForLinks(path string, open func(link string)) (*LinkListener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		// Either another instance is listening, or a crashed one left its socket behind.
		if c, dialErr := net.DialTimeout("unix", path, handOffTimeout); dialErr == nil {
			c.Close()
			return nil, ErrAlreadyRunning
		}
		if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return nil, err
		}
		if ln, err = net.Listen("unix", path); err != nil {
			return nil, err
		}
	}
	l := &LinkListener{ln: ln, path: path}
	l.wg.Add(1)
	go l.serve(open)
	return l, nil
}

// ErrAlreadyRunning means another Linkdesk took the socket first.
var ErrAlreadyRunning = errors.New("another Linkdesk is already running")

func (l *LinkListener) serve(open func(string)) {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Warn("instance: accept", "err", err)
			}
			return
		}
		l.handle(conn, open)
	}
}

func (l *LinkListener) handle(conn net.Conn, open func(string)) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(handOffTimeout))
	var msg handOffMessage
	if err := json.NewDecoder(io.LimitReader(conn, maxHandOff)).Decode(&msg); err != nil {
		slog.Warn("instance: bad handoff", "err", err)
		return
	}
	slog.Info("instance: link handed over by a later launch")
	open(msg.Open)
	_, _ = io.WriteString(conn, "ok\n")
}

// Close stops listening and removes the socket.
func (l *LinkListener) Close() error {
	err := l.ln.Close()
	l.wg.Wait()
	return err
}
