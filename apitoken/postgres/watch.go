package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Payloads of the change notifications: a prefix and an id.
const (
	tokenChange = "t:"
	userChange  = "u:"
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

// Watch calls fn for each change to a token or user committed by any Store
// on this schema, this one included, until ctx ends; it blocks until then.
// It listens on a connection of its own (not one of the pool's). Each time
// that connection is established, first and after every loss, fn gets
// Change{All: true} once LISTEN is in place: changes committed while no one
// listened are unknown, and the ones after are all delivered. A lost
// connection is retried with a growing delay (100 ms to 5 s); a silent
// connection is pinged every 10 s, so a dead network path is noticed.
func (s *Store) Watch(ctx context.Context, fn func(apitoken.Change)) {
	delay := watchMinBackoff
	var lost error
	for {
		err := s.listen(ctx, func() {
			if lost != nil {
				s.logger.Info("change feed re-established; dropping every cached token and user state",
					slog.String("schema", s.schema))
				lost = nil
			}
			delay = watchMinBackoff
			fn(apitoken.Change{All: true})
		}, fn)
		if ctx.Err() != nil {
			return
		}
		if lost == nil {
			s.logger.Warn("change feed lost; changes made on other instances apply after cache_ttl until it is back",
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

// listen connects, LISTENs, calls ready, and passes on notifications until
// the connection fails or ctx ends.
func (s *Store) listen(ctx context.Context, ready func(), fn func(apitoken.Change)) error {
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
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(parseChange(n.Payload))
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

// parseChange reads a notification payload. One it does not know (from a
// newer version, say) drops everything: safe, if costly.
func parseChange(payload string) apitoken.Change {
	switch {
	case strings.HasPrefix(payload, tokenChange) && len(payload) > len(tokenChange):
		return apitoken.Change{TokenID: payload[len(tokenChange):]}
	case strings.HasPrefix(payload, userChange) && len(payload) > len(userChange):
		return apitoken.Change{UserID: payload[len(userChange):]}
	}
	return apitoken.Change{All: true}
}
