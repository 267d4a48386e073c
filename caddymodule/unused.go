package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// unusedSweepEvery is how often a config with revoke_unused_after sweeps
// for unused tokens; the tests make it shorter.
var unusedSweepEvery = time.Minute

// unusedAfter is revoke_unused_after as a duration: an expiry choice (14d
// is not one, so 30d 60d 90d 1y) or a Caddy duration (14d, 2160h), at
// least apitoken.MinUnusedAfter; 0 for "" (off).
func unusedAfter(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, ok := apitoken.Expiry(s).Duration()
	if !ok {
		if s == string(apitoken.ExpiryNever) {
			return 0, errors.New("cannot be never: leave revoke_unused_after out to keep unused tokens")
		}
		var err error
		if d, err = caddy.ParseDuration(s); err != nil {
			return 0, errors.New("is not a period: use 30d, 60d, 90d, 1y or a duration such as 45d or 2160h")
		}
	}
	if d < apitoken.MinUnusedAfter {
		return 0, fmt.Errorf("is shorter than %d days: the owner is reminded 7 days before, and a token used every week must never be", apitoken.MinUnusedAfter/(24*time.Hour))
	}
	return d, nil
}

// unusedSweep is the sweeper goroutine of one config: it runs from Start
// to Stop (on a reload the new config's starts before the old one's
// stops; two sweeping at once revoke and remind once, as two instances
// do).
type unusedSweep struct {
	stop context.CancelFunc
	done chan struct{}
}

// startUnusedSweep starts sweeping when revoke_unused_after is set, on the
// apps' clock.
func (a *App) startUnusedSweep() {
	after, _ := unusedAfter(a.RevokeUnusedAfter) // checked by Validate
	if after == 0 {
		return
	}
	cfg := a.service.Config()
	cfg.Now = clock
	w := &apitoken.UnusedSweeper{Service: apitoken.NewService(cfg), After: after}
	log := a.logger.Named("unused")
	ctx, stop := context.WithCancel(context.Background())
	a.unused = &unusedSweep{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(a.unused.done)
		t := time.NewTicker(unusedSweepEvery)
		defer t.Stop()
		for {
			revoked, reminded, err := w.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("sweeping for unused tokens failed; will retry", zap.Error(err))
			}
			if revoked > 0 || reminded > 0 {
				log.Info("unused tokens", zap.Int("revoked", revoked), zap.Int("reminders", reminded),
					zap.Duration("revoke_unused_after", after))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stopUnusedSweep stops the sweeper and waits for it.
func (a *App) stopUnusedSweep() {
	if a.unused != nil {
		a.unused.stop()
		<-a.unused.done
		a.unused = nil
	}
}
