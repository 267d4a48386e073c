package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Watch timings (variables so that tests can shorten them).
var (
	// watchIdle is how long the change feed may be silent before its
	// connection is checked with a ping: a connection cut without a word
	// (a dead network path) is found within watchIdle + watchPingTimeout.
	watchIdle        = 10 * time.Second
	watchPingTimeout = 5 * time.Second
	// The reconnect delay starts small, so a dropped connection costs a
	// fraction of a second, and doubles up to watchMaxBackoff while the
	// database stays away.
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
)

// watchAppName is the application_name of the feed's connection, followed
// by the channel, so that it is recognized in pg_stat_activity.
const watchAppName = "caddy-apitokens feed "

// Wake calls fn after each notification on this schema's channel, and
// each time its connection is (re)established, until ctx ends; it blocks
// until then. It listens on a connection of its own (not one of the pool's).
// A notification carries nothing: fn only prompts a read of the change
// sequence (apitoken.State.Follow), which is what makes a change seen, so a
// lost connection loses no change, only promptness. A lost connection is
// retried with a growing delay (100 ms to 5 s); a silent connection is
// pinged every 10 s, so a dead network path is noticed.
func (s *Store) Wake(ctx context.Context, fn func()) {
	delay := watchMinBackoff
	var lost error
	for {
		err := s.listen(ctx, func() {
			if lost != nil {
				s.logger.Info("change feed re-established", slog.String("schema", s.schema))
				lost = nil
			}
			delay = watchMinBackoff
			fn()
		}, fn)
		if ctx.Err() != nil {
			return
		}
		if lost == nil {
			s.logger.Warn("change feed lost; changes made on other instances are read from the change sequence every poll until it is back",
				slog.String("schema", s.schema), slog.String("error", err.Error()), slog.Duration("retry_in", delay))
		}
		lost = err
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, watchMaxBackoff)
	}
}

// listen connects, LISTENs, calls ready, and calls fn for each notification
// until the connection fails or ctx ends.
func (s *Store) listen(ctx context.Context, ready, fn func()) error {
	cfg := s.pool.Config().ConnConfig // a copy
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = watchAppName + s.channel
	// A wait or ping that runs out of time only sets a deadline on the
	// socket, and the connection stays usable. (pgx's default would also
	// send a cancel request, over a new connection, every watchIdle; the
	// server could apply it to the ping that follows.)
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	ready()
	for {
		wctx, cancel := context.WithTimeout(ctx, watchIdle)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn()
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		// Quiet for watchIdle: make sure the connection still answers.
		pctx, cancel := context.WithTimeout(ctx, watchPingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}
