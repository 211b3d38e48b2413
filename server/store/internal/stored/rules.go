package stored

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// FailedLookup reports whether err, from an operation on the request holding a user
// code, counts against the code-lookup limits: the code was unknown, already used or
// expired (store.Store's ApproveUserCode). A success or any other error does not.
func FailedLookup(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrAlreadyUsed)
}

// GrantName is the name an approved device's link gets: the one the person gave,
// else the device's own name, else its client's name, else the client's id.
func GrantName(given, deviceName, clientName, clientID string) string {
	for _, n := range []string{given, deviceName, clientName} {
		if n != "" {
			return n
		}
	}
	return clientID
}

// SigningKeys scans rows of (id, algorithm, private_key_pem, created_at, not_before)
// newest first and opens each key with box; a key that does not open (a database
// restored without its key file) is left out with a warning, so linkd starts with a
// new key rather than not at all. who prefixes errors and the warning ("sqlite").
func SigningKeys(rows *sql.Rows, box *Sealer, log *slog.Logger, who string) ([]store.SigningKey, error) {
	defer rows.Close()
	var keys []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created, notBefore int64
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateKeyPEM, &created, &notBefore); err != nil {
			return nil, fmt.Errorf("%s: signing keys: %w", who, err)
		}
		k.CreatedAt, k.NotBefore = Time(created), Time(notBefore)
		pem, err := box.OpenKey(k.ID, k.PrivateKeyPEM)
		if err != nil {
			log.Warn(who+": signing key left out", "kid", k.ID, "err", err)
			continue
		}
		k.PrivateKeyPEM = pem
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: signing keys: %w", who, err)
	}
	return keys, nil
}

// AttemptTimes scans rows of one attempt time each (as stored), oldest first, for
// store.AttemptLimit.Wait.
func AttemptTimes(rows *sql.Rows, who string) ([]time.Time, error) {
	defer rows.Close()
	var ats []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, fmt.Errorf("%s: count attempts: %w", who, err)
		}
		ats = append(ats, Time(at))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: count attempts: %w", who, err)
	}
	return ats, nil
}

// ClientColumns are the clients table's columns, in the order ScanClient reads them;
// both stores keep clients alike.
const ClientColumns = `id, name, logo_uri, secret_hash, scopes, redirect_uris, grant_types, created_at,
	device_flow_off, allowed_networks, approve_same_network, max_devices, unlink_after_ns`

// Scanner is a *sql.Row or *sql.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// ScanClient reads a client from a row selected with ClientColumns.
func ScanClient(s Scanner) (store.Client, error) {
	var c store.Client
	var scopes, redirects, grantTypes, networks string
	var created, unlinkAfter int64
	err := s.Scan(&c.ID, &c.Name, &c.LogoURI, &c.SecretHash, &scopes, &redirects, &grantTypes, &created,
		&c.Policy.DeviceFlowOff, &networks, &c.Policy.ApproveSameNetwork, &c.Policy.MaxDevices, &unlinkAfter)
	if err != nil {
		return store.Client{}, err
	}
	c.CreatedAt = Time(created)
	c.Policy.UnlinkAfter = time.Duration(unlinkAfter)
	for _, f := range []struct {
		dst *[]string
		src string
	}{{&c.Scopes, scopes}, {&c.RedirectURIs, redirects}, {&c.GrantTypes, grantTypes}, {&c.Policy.AllowedNetworks, networks}} {
		if *f.dst, err = Unlist(f.src); err != nil {
			return store.Client{}, err
		}
	}
	return c, nil
}
