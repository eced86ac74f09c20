package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/vigie-edu/vigie/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStartStop(t *testing.T) {
	s := pgtest.Start(t)
	dsn := s.Database(t)
	conn := pgtest.Connect(t, dsn)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("SELECT 40 + 2 = %d, %v", n, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("the server still answers after Stop")
	}
	s.Close()
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", s.Dir, err)
	}
}

func TestSharedDatabasesAreSeparate(t *testing.T) {
	s := pgtest.Shared(t)
	a := pgtest.Connect(t, s.Database(t))
	b := pgtest.Connect(t, s.Database(t))
	ctx := context.Background()
	if _, err := a.Exec(ctx, "CREATE TABLE x (i int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "CREATE TABLE x (i int)"); err != nil {
		t.Fatalf("a second database sees the first one's table: %v", err)
	}
}
