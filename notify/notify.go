// Package notify delivers the notifications of the token outbox: an email to
// the token's owner (github.com/wneessen/go-mail) and a signed JSON POST to
// each webhook, retried with exponential backoff.
//
// What is to be sent is written to the store (apitoken.Outbox) in the
// transaction of the change it tells of, so nothing is lost when a process
// stops; a Deliverer claims due notifications under a lease (on PostgreSQL,
// with FOR UPDATE SKIP LOCKED, so several instances share the work and none
// sends what another holds), sends them and marks each sent, retried or
// failed. A periodic scan enqueues the 7-day and 1-day expiry reminders; the
// outbox's unique key per event and destination makes that idempotent
// across scans and instances.
//
// Delivery is at least once: a process that dies after a message went out
// and before it was marked sent sends it again once its lease ends. Webhook
// receivers deduplicate by the payload's id; emails keep the same Message-ID.
//
// The package has no Caddy import; caddymodule runs a Deliverer beside the
// pooled store.
package notify

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Sender delivers notifications to one destination.
type Sender interface {
	// Destination is the Destination of the notifications this sender
	// delivers: apitoken.DestinationEmail, or WebhookDestination(url).
	Destination() string
	// Send delivers n. Errors made by Skip and Permanent are not retried.
	Send(ctx context.Context, n apitoken.Notification) error
}

// Defaults of a Deliverer.
const (
	DefaultMaxAttempts  = 12
	DefaultLease        = 2 * time.Minute
	DefaultPollInterval = 5 * time.Second
	DefaultScanInterval = time.Minute
	DefaultRetention    = 30 * 24 * time.Hour
	DefaultBatch        = 8

	// pruneInterval is how often notifications older than Retention are
	// deleted.
	pruneInterval = time.Hour
)

// Deliverer sends the outbox's notifications and enqueues expiry reminders.
// Set the fields before Run or the first call of a step; SetSenders may be
// called at any time (a config reload).
type Deliverer struct {
	Store  apitoken.Store
	Logger *zap.Logger
	// Now is the clock (default time.Now). Due times, leases, backoff and
	// reminders all follow it, so tests move it instead of sleeping.
	Now func() time.Time
	// Backoff is the wait after the attempt-th failed attempt (1, 2, ...)
	// before the next. Default: 30 s, doubling, at most 1 h.
	Backoff func(attempt int) time.Duration
	// MaxAttempts is how many attempts a notification gets before it is
	// marked failed. Default 12 (about 5 hours with the default backoff).
	MaxAttempts int
	// Lease is how long a claim holds a notification; it must exceed the
	// longest send (a webhook's and SMTP's timeouts). Default 2 min.
	Lease time.Duration
	// PollInterval is how often Run looks for due notifications (others'
	// enqueues, retries). Default 5 s. Wake makes it look at once.
	PollInterval time.Duration
	// ScanInterval is how often Run scans for due reminders. Default 1 min.
	ScanInterval time.Duration
	// Retention is how long notifications are kept once done. Default 30
	// days.
	Retention time.Duration
	// Batch is the most notifications claimed and sent at once. Default 8.
	Batch int

	mu       sync.Mutex
	senders  map[string]Sender
	reminded map[string]time.Time // reminder keys enqueued -> token expiry
	wake     chan struct{}
	initOnce sync.Once
}

func (d *Deliverer) init() {
	d.initOnce.Do(func() {
		d.wake = make(chan struct{}, 1)
		if d.Logger == nil {
			d.Logger = zap.NewNop()
		}
	})
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Deliverer) backoff(attempt int) time.Duration {
	if d.Backoff != nil {
		return d.Backoff(attempt)
	}
	return ExponentialBackoff(30*time.Second, time.Hour)(attempt)
}

// ExponentialBackoff waits base after the first failure, doubling after each
// further one, and never more than max.
func ExponentialBackoff(base, max time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// SetSenders replaces the senders. Notifications to destinations that no
// sender serves stay pending in the outbox (another instance, or a later
// config, may serve them).
func (d *Deliverer) SetSenders(senders ...Sender) {
	d.init()
	m := make(map[string]Sender, len(senders))
	for _, s := range senders {
		m[s.Destination()] = s
	}
	d.mu.Lock()
	if !slices.Equal(slices.Sorted(maps.Keys(m)), slices.Sorted(maps.Keys(d.senders))) {
		d.reminded = nil // new destinations may still owe reminders
	}
	d.senders = m
	d.mu.Unlock()
	d.Wake()
}

// Destinations lists the destinations of the current senders, sorted.
func (d *Deliverer) Destinations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.senders))
}

func (d *Deliverer) snapshot() map[string]Sender {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.senders
}

// Wake makes Run look for due notifications now (a change just enqueued
// some).
func (d *Deliverer) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers due notifications, scans for reminders and prunes old
// notifications until ctx ends. A send in flight when ctx ends is finished
// (within its own timeout) and recorded; notifications claimed but not yet
// tried are released for the next claim.
func (d *Deliverer) Run(ctx context.Context) {
	d.init()
	poll := time.NewTicker(orDefault(d.PollInterval, DefaultPollInterval))
	defer poll.Stop()
	scanEvery := orDefault(d.ScanInterval, DefaultScanInterval)
	var lastScan, lastPrune time.Time
	for {
		if now := d.now(); now.Sub(lastScan) >= scanEvery || now.Before(lastScan) {
			if _, err := d.ScanReminders(ctx); err != nil && ctx.Err() == nil {
				d.Logger.Error("scanning for expiry reminders failed; will retry", zap.Error(err))
			}
			lastScan = now
		}
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.Logger.Error("claiming notifications failed; will retry", zap.Error(err))
		}
		// Without senders (notifications off) the store is left alone.
		if now := d.now(); len(d.Destinations()) > 0 && now.Sub(lastPrune) >= pruneInterval {
			if k, err := d.Prune(ctx); err != nil && ctx.Err() == nil {
				d.Logger.Error("pruning notifications failed", zap.Error(err))
			} else if k > 0 {
				d.Logger.Debug("pruned old notifications", zap.Int("count", k))
			}
			lastPrune = now
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-d.wake:
		}
	}
}

// DeliverDue claims and sends due notifications, batch after batch, until
// none is due or ctx ends. It returns how many it tried.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	d.init()
	tried := 0
	for ctx.Err() == nil {
		senders := d.snapshot()
		if len(senders) == 0 {
			return tried, nil
		}
		ns, err := d.Store.ClaimNotifications(ctx, apitoken.Claim{
			Destinations: slices.Sorted(maps.Keys(senders)),
			Now:          d.now(),
			Lease:        orDefault(d.Lease, DefaultLease),
			Limit:        orDefault(d.Batch, DefaultBatch),
		})
		if err != nil {
			return tried, err
		}
		if len(ns) == 0 {
			return tried, nil
		}
		var wg sync.WaitGroup
		for _, n := range ns {
			if ctx.Err() != nil {
				d.release(n)
				continue
			}
			tried++
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.deliver(ctx, senders[n.Destination], n)
			}()
		}
		wg.Wait()
	}
	return tried, ctx.Err()
}

// finishTimeout bounds the recording of an outcome, which must happen even
// while the deliverer stops.
const finishTimeout = 10 * time.Second

// deliver sends one claimed notification and records the outcome.
func (d *Deliverer) deliver(ctx context.Context, s Sender, n apitoken.Notification) {
	log := d.Logger.With(zap.Int64("notification_id", n.ID), zap.String("event", string(n.Event)),
		zap.String("token_id", n.TokenID), zap.String("destination", n.Destination), zap.Int("attempt", n.Attempts+1))
	// A send that has begun is finished even if ctx ends: cutting it off
	// could deliver a message that is then sent again.
	err := s.Send(context.WithoutCancel(ctx), n)
	now := d.now()
	r := apitoken.NotificationResult{State: apitoken.NotificationSent, Attempted: true, At: now}
	var skip *skipError
	switch {
	case err == nil:
		log.Debug("notification sent")
	case errors.As(err, &skip):
		r.State, r.Attempted, r.Error = apitoken.NotificationSkipped, false, skip.msg
		log.Debug("notification skipped: nothing to send", zap.String("reason", skip.msg))
	default:
		r.Error = err.Error()
		attempts := n.Attempts + 1
		if IsPermanent(err) || attempts >= orDefault(d.MaxAttempts, DefaultMaxAttempts) {
			r.State = apitoken.NotificationFailed
			log.Error("notification failed; giving up", zap.Error(err), zap.Bool("permanent", IsPermanent(err)))
		} else {
			r.State, r.NextAttemptAt = apitoken.NotificationPending, now.Add(d.backoff(attempts))
			log.Warn("notification failed; will retry", zap.Error(err), zap.Time("next_attempt_at", r.NextAttemptAt))
		}
	}
	d.finish(ctx, n, r, log)
}

// release gives back a claimed notification untried.
func (d *Deliverer) release(n apitoken.Notification) {
	now := d.now()
	d.finish(context.Background(), n, apitoken.NotificationResult{State: apitoken.NotificationPending, NextAttemptAt: now, At: now},
		d.Logger.With(zap.Int64("notification_id", n.ID)))
}

func (d *Deliverer) finish(ctx context.Context, n apitoken.Notification, r apitoken.NotificationResult, log *zap.Logger) {
	var err error
	for try := 0; try < 3; try++ {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		err = d.Store.FinishNotification(fctx, n.ID, n.Lease, r)
		cancel()
		if err == nil || !errors.Is(err, apitoken.ErrUnavailable) {
			break
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	if err != nil {
		// The row stays claimed until its lease ends, then is tried again:
		// a message that went out may go out twice, never not at all.
		log.Error("recording a notification's outcome failed", zap.Error(err), zap.String("state", string(r.State)))
	}
}

// Prune deletes the notifications done longer than Retention ago.
func (d *Deliverer) Prune(ctx context.Context) (int, error) {
	return d.Store.PruneNotifications(ctx, d.now().Add(-orDefault(d.Retention, DefaultRetention)))
}

// skipError: nothing to send.
type skipError struct{ msg string }

func (e *skipError) Error() string { return "nothing to send: " + e.msg }

// Skip is the error of a Send that has nothing to send (an owner without an
// email address): the notification is marked skipped with msg, not retried.
func Skip(msg string) error { return &skipError{msg: msg} }

// permanentError: no retry can change it.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry can change (a recipient the mail
// server refuses): the notification is marked failed at once.
func Permanent(err error) error { return &permanentError{err: err} }

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
