package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/storetest"
)

func openTemp(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "linkd.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTemp(t)
		return db
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func deviceAuth(n int) store.DeviceAuth {
	return store.DeviceAuth{
		DeviceCode: fmt.Sprintf("secret-device-code-%d", n),
		UserCode:   fmt.Sprintf("BCDF%04d", n),
		ClientID:   "tv",
		Scopes:     []string{"openid"},
		Device:     devices.DeviceInfo{Name: "TV", Kind: devices.KindTV},
		CreatedAt:  t0,
		ExpiresAt:  t0.Add(10 * time.Minute),
		Interval:   5 * time.Second,
		State:      store.DeviceAuthPending,
	}
}

// TestReopen checks that what was committed survives closing and reopening the file,
// and that reopening does not re-run migrations.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d := deviceAuth(1)
	if err := db.CreateDeviceAuth(ctx, d); err != nil {
		t.Fatal(err)
	}
	g, err := db.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "Den TV", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRefreshToken(ctx, store.RefreshToken{Token: "rt-secret", GrantID: g.ID, Subject: "sub-1",
		ClientID: "tv", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddFailure(ctx, "ip:1", t0, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.SchemaVersion(ctx)
	if err != nil || v != len(migrations) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
	}
	got, err := db.GrantByID(ctx, "sub-1", g.ID)
	if err != nil || got.Name != "Den TV" {
		t.Fatalf("grant after reopen = %+v, %v", got, err)
	}
	da, err := db.CollectDeviceTokens(ctx, "tv", d.DeviceCode, store.DeviceTokens{
		Access: store.AccessToken{ID: "at-reopen", ClientID: "tv", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}},
		"", t0, 0)
	if err != nil || da.GrantID != g.ID {
		t.Fatalf("consume after reopen = %+v, %v", da, err)
	}
	if _, err := db.RefreshTokenByToken(ctx, "rt-secret", t0, 0); err != nil {
		t.Fatalf("refresh token after reopen: %v", err)
	}
	if n, err := db.CountFailures(ctx, "ip:1", t0); err != nil || n != 1 {
		t.Fatalf("failures after reopen = %d, %v", n, err)
	}
}

// TestSecretsHashed checks that no device code, refresh token or auth code reaches the
// database file (or its WAL) in the clear.
func TestSecretsHashed(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	d := deviceAuth(1)
	d.DeviceCode = "DEVICECODE-PLAINTEXT-MARKER"
	if err := db.CreateDeviceAuth(ctx, d); err != nil {
		t.Fatal(err)
	}
	g, err := db.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRefreshToken(ctx, store.RefreshToken{Token: "REFRESH-PLAINTEXT-MARKER", GrantID: g.ID,
		Subject: "sub-1", ClientID: "tv", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAuthRequest(ctx, store.AuthRequest{ID: "ar", ClientID: "linkdesk", CreatedAt: t0,
		ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveAuthCode(ctx, "ar", "AUTHCODE-PLAINTEXT-MARKER"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthRequestByCode(ctx, "AUTHCODE-PLAINTEXT-MARKER"); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("read nothing from the database files")
	}
	for _, marker := range []string{"DEVICECODE-PLAINTEXT-MARKER", "REFRESH-PLAINTEXT-MARKER", "AUTHCODE-PLAINTEXT-MARKER"} {
		if strings.Contains(string(all), marker) {
			t.Errorf("%s found in the database files", marker)
		}
	}
	if !strings.Contains(string(all), hash("DEVICECODE-PLAINTEXT-MARKER")) {
		t.Error("the device code's hash is not in the files either; is the test reading the right ones?")
	}
}

// TestTwoHandlesOneFile races approvals through two independent DBs on one file, as two
// linkd processes sharing a database would: SQLite's file locking must let exactly one
// win, and failure counters must be shared.
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	const codes = 5
	for i := range codes {
		if err := a.CreateDeviceAuth(ctx, deviceAuth(i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[string]int{}
	for i := range codes {
		for j, db := range []*DB{a, b, a, b} {
			wg.Go(func() {
				_, err := db.ApproveDeviceAuth(ctx, deviceAuth(i).UserCode, fmt.Sprintf("sub-%d", j), "", t0.Add(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins[deviceAuth(i).UserCode]++
				case !errors.Is(err, store.ErrAlreadyUsed):
					t.Errorf("approve: %v", err)
				}
			})
		}
		wg.Go(func() {
			if _, err := b.AddFailure(ctx, "ip:shared", t0, t0); err != nil {
				t.Errorf("AddFailure: %v", err)
			}
		})
	}
	wg.Wait()
	for i := range codes {
		if n := wins[deviceAuth(i).UserCode]; n != 1 {
			t.Errorf("code %d approved %d times, want 1", i, n)
		}
	}
	if n, err := a.CountFailures(ctx, "ip:shared", t0); err != nil || n != codes {
		t.Errorf("failures seen through the other handle = %d, %v; want %d", n, err, codes)
	}
}

// TestMixedLoad runs whole device flows in parallel with readers, as a busy linkd
// would: no call may fail with a lock error.
func TestMixedLoad(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	const workers, flows = 6, 8
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.ListGrants(ctx, fmt.Sprintf("sub-%d", r), store.FlowDevice); err != nil {
					t.Errorf("ListGrants: %v", err)
					return
				}
			}
		})
	}
	var flowsWG sync.WaitGroup
	for w := range workers {
		flowsWG.Go(func() {
			for f := range flows {
				n := w*flows + f
				d := deviceAuth(n)
				sub := fmt.Sprintf("sub-%d", w%2)
				steps := []func() error{
					func() error { return db.CreateDeviceAuth(ctx, d) },
					func() error { _, err := db.DeviceAuthByDeviceCode(ctx, "tv", d.DeviceCode); return err },
					func() error {
						_, err := db.ApproveDeviceAuth(ctx, d.UserCode, sub, "", t0.Add(time.Second))
						return err
					},
					func() error {
						_, err := db.CollectDeviceTokens(ctx, "tv", d.DeviceCode, store.DeviceTokens{
							Access: store.AccessToken{ID: fmt.Sprint("at-", n), ClientID: "tv", CreatedAt: t0,
								ExpiresAt: t0.Add(time.Hour)}}, "", t0.Add(2*time.Second), 0)
						return err
					},
					func() error { _, err := db.AddFailure(ctx, "ip:load", t0, t0); return err },
				}
				for i, step := range steps {
					if err := step(); err != nil {
						t.Errorf("flow %d step %d: %v", n, i, err)
						return
					}
				}
			}
		})
	}
	flowsWG.Wait()
	close(stop)
	wg.Wait()
	total := 0
	for _, sub := range []string{"sub-0", "sub-1"} {
		list, err := db.ListGrants(ctx, sub, store.FlowDevice)
		if err != nil {
			t.Fatal(err)
		}
		total += len(list)
	}
	if total != workers*flows {
		t.Errorf("%d grants, want %d", total, workers*flows)
	}
}

// TestNewerSchemaRefused checks that a binary never runs against a schema it does not
// know.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	if _, err := db.write.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, 0)`,
		len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db2, err := Open(ctx, path); err == nil {
		db2.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

// TestOddPath opens a database in a directory whose name has URI-special characters.
func TestOddPath(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data dir %20 ?x=1 #frag")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "linkd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertClient(ctx, store.Client{ID: "c", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not where asked: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("files created beside the data dir: %v", entries)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	for _, in := range []time.Time{
		{},
		t0,
		time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600)),
		time.Unix(0, 1).UTC(),
	} {
		if got := tm(ts(in)); !got.Equal(in) || got.Location() != time.UTC && !in.IsZero() {
			t.Errorf("tm(ts(%v)) = %v", in, got)
		}
	}
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := tm(ts(far)); got.Year() != 2262 {
		t.Errorf("far future stored as %v, want clamped to 2262", got)
	}
	if got := tm(ts(time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC))); got.Year() != 1677 || got.IsZero() {
		t.Errorf("far past stored as %v, want clamped to 1677", got)
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	for _, p := range []struct {
		name string
		want string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
	} {
		for poolName, q := range map[string]querier{"write": db.write, "read": db.read} {
			var got string
			if err := q.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("%s pool: PRAGMA %s = %s, want %s", poolName, p.name, got, p.want)
			}
		}
	}
	if _, err := db.read.ExecContext(ctx, `DELETE FROM grants`); err == nil {
		t.Error("the read pool can write")
	}
}

func BenchmarkDeviceAuthByDeviceCode(b *testing.B) {
	ctx := context.Background()
	db, _ := openTemp(b)
	d := deviceAuth(1)
	d.ExpiresAt = t0.Add(1000 * time.Hour)
	if err := db.CreateDeviceAuth(ctx, d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.DeviceAuthByDeviceCode(ctx, "tv", d.DeviceCode); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessTokenByID(b *testing.B) {
	ctx := context.Background()
	db, _ := openTemp(b)
	if err := db.CreateGrant(ctx, store.Grant{ID: "g", Subject: "s", ClientID: "tv", Flow: store.FlowDevice,
		CreatedAt: t0}); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateAccessToken(ctx, store.AccessToken{ID: "at", GrantID: "g", Subject: "s", ClientID: "tv",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.AccessTokenByID(ctx, "at", t0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkApproveDeviceAuth(b *testing.B) {
	ctx := context.Background()
	db, _ := openTemp(b)
	i := 0
	for b.Loop() {
		i++
		d := deviceAuth(i)
		d.UserCode = fmt.Sprintf("U%07d", i)
		if err := db.CreateDeviceAuth(ctx, d); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ApproveDeviceAuth(ctx, d.UserCode, "sub", "", t0.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeviceCodeKey: a device code with the provider's time-ordered prefix is stored
// under that prefix and the SHA-256 of the whole code (never the code's secret part),
// later codes sort after earlier ones, and such a request is found by its code like
// any other.
func TestDeviceCodeKey(t *testing.T) {
	secret := "s3cr3t-random-part-of-the-code"
	early, late := "0000018f00000000."+secret, "0000018f00000001."+secret
	if k := deviceCodeKey(early); k != "0000018f00000000."+hash(early) {
		t.Fatalf("key of %q = %q", early, k)
	}
	if deviceCodeKey(early) >= deviceCodeKey(late) {
		t.Fatalf("keys out of order: %q >= %q", deviceCodeKey(early), deviceCodeKey(late))
	}
	for _, code := range []string{secret, "0000018F00000000." + secret, "0000018f0000000." + secret, "0000018f00000000"} {
		if k := deviceCodeKey(code); k != hash(code) {
			t.Errorf("key of unprefixed %q = %q, want its hash", code, k)
		}
	}

	ctx := context.Background()
	db, _ := openTemp(t)
	d := deviceAuth(1)
	d.DeviceCode = late
	if err := db.CreateDeviceAuth(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := db.DeviceAuthByDeviceCode(ctx, d.ClientID, late)
	if err != nil || got.UserCode != d.UserCode {
		t.Fatalf("DeviceAuthByDeviceCode = %+v, %v", got, err)
	}
	if _, err := db.DeviceAuthByDeviceCode(ctx, d.ClientID, early); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another code with the same secret part: %v, want ErrNotFound", err)
	}
	var stored int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM device_auths WHERE instr(device_code_hash, ?) > 0`, secret).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("rows holding the code's secret part: %d, %v", stored, err)
	}
}
