package sqlite

import (
	"context"
	"fmt"

	"github.com/linkdesk/linkdesk/server/store"
)

// insertCounts are the device_auth_counts changes of the requests that the current
// write transaction inserted, by count. A trigger used to add each new request to
// its five counts, five upserts that cost a sixth of a capped create's CPU on the
// single writer; the writer now adds them up in memory and writes each count it
// changed once, just before the commit (flushInsertCounts), so a batch of requests
// from one address and client writes five rows instead of five per request. Until
// then readDeviceAuthCounts adds them to what it reads, so every check inside the
// transaction sees exact counts. Only the writer uses it, one transaction at a time;
// a transaction that rolls back leaves it to be cleared when the next one begins.
type insertCounts map[countKey]int

// countKey names one row of device_auth_counts.
type countKey struct{ kind, key string }

// The kinds of count in device_auth_counts (migration 8).
const (
	countWaitingIP     = "waiting ip"
	countWaitingClient = "waiting client"
	countWaiting       = "waiting"
	countRateIP        = "rate ip"
	countRateClient    = "rate client"
)

// add counts d, inserted with its waiting and recent flags.
func (c insertCounts) add(d store.DeviceAuth, waiting, recent bool) {
	if waiting {
		c[countKey{countWaitingIP, d.RequestIP}]++
		c[countKey{countWaitingClient, d.ClientID}]++
		c[countKey{countWaiting, ""}]++
	}
	if recent {
		c[countKey{countRateIP, d.RequestIP}]++
		c[countKey{countRateClient, d.ClientID}]++
	}
}

// addTo adds the counts not yet written to the ones read from the table for d's
// address and client.
func (c insertCounts) addTo(counts *deviceAuthCounts, d store.DeviceAuth) {
	if len(c) == 0 {
		return
	}
	counts.ipRate += c[countKey{countRateIP, d.RequestIP}]
	counts.clientRate += c[countKey{countRateClient, d.ClientID}]
	counts.ipWaiting += c[countKey{countWaitingIP, d.RequestIP}]
	counts.clientWaiting += c[countKey{countWaitingClient, d.ClientID}]
	counts.waiting += c[countKey{countWaiting, ""}]
}

// The statements of flushInsertCounts (hotWrites): add to a count, creating it, and
// delete a count that is back to zero (a sweep in the same transaction may already
// have taken the request off again), as the triggers of migration 8 do.
const (
	addCountSQL  = `INSERT INTO device_auth_counts (kind, key, n) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET n = n + excluded.n RETURNING n AS n`
	dropCountSQL = `DELETE FROM device_auth_counts WHERE kind = ? AND key = ? AND n = 0`
)

// flushInsertCounts writes the counts of the requests tx inserted, before tx commits.
func (db *DB) flushInsertCounts(ctx context.Context, tx txRunner) error {
	for k, n := range db.caps.inserted {
		if n == 0 {
			continue
		}
		var total int
		if err := tx.QueryRowContext(ctx, addCountSQL, k.kind, k.key, n).Scan(&total); err != nil {
			return fmt.Errorf("sqlite: count device requests: %w", err)
		}
		if total != 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, dropCountSQL, k.kind, k.key); err != nil {
			return fmt.Errorf("sqlite: count device requests: %w", err)
		}
	}
	clear(db.caps.inserted)
	return nil
}
