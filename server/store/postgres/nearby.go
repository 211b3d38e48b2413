package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// NearbyDeviceAuths returns at most limit requests pending and unexpired at now that
// were made from network (store.NetworkKey of their address), newest first; an
// empty, non-nil slice when there are none. The state is written out so the partial
// index device_auths_net_pending serves the query.
func (db *DB) NearbyDeviceAuths(ctx context.Context, network string, now time.Time, limit int) ([]store.DeviceAuth, error) {
	out := []store.DeviceAuth{}
	if network == "" || limit <= 0 {
		return out, nil
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+deviceAuthCols+` FROM device_auths
		WHERE request_net = $1 AND state = 'pending' AND expires_at > $2
		ORDER BY created_at DESC, user_code DESC LIMIT $3`, network, ts(now), limit)
	if err != nil {
		return nil, unavailable(fmt.Errorf("postgres: nearby device auths: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDeviceAuth(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("postgres: nearby device auths: %w", err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("postgres: nearby device auths: %w", err))
	}
	return out, nil
}
