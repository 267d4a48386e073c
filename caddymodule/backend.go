package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
)

// Storage selects the token store.
type Storage struct {
	// Driver is "sqlite" (one instance) or "postgres" (several instances on
	// one database make one deployment; needs signing_keys).
	Driver string `json:"driver"`
	// DSN is the database file for sqlite; for postgres, a pgx connection
	// string (postgres://user:password@host:5432/db?search_path=apitokens,
	// pool settings in pool_* parameters). Placeholders such as
	// {env.APITOKENS_DATABASE_URL} are replaced at provision.
	DSN string `json:"dsn,omitempty"`

	dsn string // DSN with its placeholders replaced
}

// backends holds the store, the cached state, the audit writer and the
// notification deliverer of each storage, shared across config reloads so
// no queued audit event or cached state is lost and no connection churns.
var backends = caddy.NewUsagePool()

type backend struct {
	store   apitoken.Store
	auditor *apitoken.Auditor
	// state is the cached token and user state of every config in turn,
	// kept coherent with the store by following its change sequence.
	state      *apitoken.State
	stopFollow context.CancelFunc
	followDone chan struct{}

	// The notification deliverer (notify.go), running until Destruct.
	notifier     *notify.Deliverer
	stopNotifier context.CancelFunc
	notifierDone chan struct{}
}

func openBackend(ctx context.Context, s *Storage, logger *zap.Logger, slogger *slog.Logger) (*backend, error) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var store apitoken.Store
	var err error
	switch s.Driver {
	case "postgres":
		store, err = postgres.Open(octx, s.dsn, postgres.WithLogger(slogger))
	default:
		store, err = sqlite.Open(octx, s.dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("api_tokens: opening token store: %w", err)
	}
	// The backend outlives the config that opened it: log through a logger
	// that is not tied to that config's lifetime.
	notifyLogger := logger.Named("notify")
	feedLogger := logger.Named("changes")
	logger = logger.Named("audit")
	state, err := apitoken.NewState(apitoken.StateConfig{Store: store, Now: clock})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("api_tokens: %w", err)
	}
	b := &backend{
		store: store,
		state: state,
		auditor: apitoken.NewAuditor(apitoken.AuditConfig{
			Store: store,
			Now:   clock,
			OnError: func(err error, queued int) {
				logger.Error("writing authentication logs failed; will retry", zap.Error(err), zap.Int("queued_rows", queued))
			},
		}),
	}
	b.startNotifier(notifyLogger)
	b.startFollow(feedLogger)
	return b, nil
}

// startFollow reads the store's change sequence until Destruct, at once when
// the store says something changed (PostgreSQL's notifications) and every
// poll otherwise, so that changes made by other instances apply within 1s.
func (b *backend) startFollow(logger *zap.Logger) {
	ctx, stop := context.WithCancel(context.Background())
	b.stopFollow, b.followDone = stop, make(chan struct{})
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	if w, ok := b.store.(apitoken.Waker); ok {
		wg.Go(func() {
			w.Wake(ctx, func() {
				select {
				case wake <- struct{}{}:
				default: // a read is already due
				}
			})
		})
	}
	wg.Go(func() {
		b.state.Follow(ctx, wake, func(err error) {
			if err != nil {
				logger.Error("token store unreachable: cached token state is served only within stale_if_error, "+
					"other requests get 503 without waiting on the store until it answers", zap.Error(err))
				return
			}
			logger.Info("token store reachable again; caught up on its changes")
		})
	})
	go func() {
		wg.Wait()
		close(b.followDone)
	}()
}

// Destruct stops following the change sequence, flushes the audit queue
// (for up to 10 s) and closes the store.
func (b *backend) Destruct() error {
	b.stopFollow()
	<-b.followDone
	b.closeNotifier()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(b.auditor.Close(ctx), b.store.Close())
}
