package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
	"github.com/linkdesk/linkdesk/server/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openTemp opens a store on a fresh database of the test cluster.
func openTemp(t testing.TB, opt ...Option) (*DB, string) {
	t.Helper()
	url := pgtest.DB(t)
	db, err := Open(context.Background(), url, opt...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTemp(t)
		return db
	})
}
