package apitoken

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Tokens nobody uses (revoke_unused_after): a generated token that is not
// revoked or expired, and has not been used (an OK authentication) since
// its generation or its last use for the deployment's period, is revoked
// (REVOKE by ByUnused), its owner told why; 7 days before, the owner and
// webhooks get EventUnused, once per idle period (a use starts a new one).

// UnusedReminderBefore is how long before an unused token's revocation its
// owner is reminded.
const UnusedReminderBefore = 7 * day

// MinUnusedAfter is the shortest revoke_unused_after: the reminder comes 7
// days before, and a token used every week must never get one.
const MinUnusedAfter = 14 * day

// UnusedSweeper revokes the tokens unused for After and enqueues the
// reminders due, each Sweep. Several sweepers on one database (instances
// of a deployment) may sweep at once: a token is revoked once (the
// revocation re-checks it under the store's row lock) and a reminder is
// enqueued once (the outbox's unique key).
//
// A sweep reads only the tokens unused since a time within the reminder
// window or, for revocations, since the previous complete sweep (less
// sweepMargin): what is older was revoked then, or had expired, which it
// stays until a use or a generation makes it recent. An hourly full
// sweep catches the rest (an expiry widened again by an update).
type UnusedSweeper struct {
	Service *Service
	After   time.Duration

	mu       sync.Mutex
	swept    time.Time            // every live token unused since at or before it is revoked
	lastFull time.Time            // when the last complete sweep from the start ran
	reminded map[string]time.Time // reminder keys enqueued -> revocation time
}

// sweepMargin is how far back of the previous sweep a sweep reads again:
// uses written late (the audit queue, clocks of other instances).
const sweepMargin = time.Hour

// fullSweepEvery is how often a sweep reads every unused token.
const fullSweepEvery = time.Hour

// errUsedMeanwhile ends the revocation of a token that was used, generated
// or revoked since it was listed.
var errUsedMeanwhile = errors.New("used meanwhile")

// Sweep revokes the tokens unused for After and enqueues the reminders
// due now (to the Service's Notify destinations), and returns how many of
// each.
func (w *UnusedSweeper) Sweep(ctx context.Context) (revoked, reminded int, err error) {
	s := w.Service
	now := s.Now()
	revokeBefore := now.Add(-w.After)
	remindBefore := revokeBefore.Add(UnusedReminderBefore)
	w.mu.Lock()
	from := time.Time{}
	if !w.lastFull.IsZero() && now.Sub(w.lastFull) < fullSweepEvery && now.After(w.lastFull) {
		from = w.swept.Add(-sweepMargin)
	}
	for k, end := range w.reminded {
		if !end.After(now) {
			delete(w.reminded, k)
		}
	}
	w.mu.Unlock()

	complete := true
	f := UnusedFilter{After: from, Until: remindBefore, Now: now, Page: Page{Limit: 500}}
	for {
		toks, next, lerr := s.cfg.Store.ListUnusedTokens(ctx, f)
		if lerr != nil {
			return revoked, reminded, fmt.Errorf("listing unused tokens: %w", lerr)
		}
		var notes []Notification
		for i := range toks {
			t := &toks[i]
			since := t.UnusedSince()
			if !since.After(revokeBefore) {
				if rerr := w.revoke(ctx, t.ID, since, revokeBefore); rerr == nil {
					revoked++
				} else if !errors.Is(rerr, errUsedMeanwhile) && !errors.Is(rerr, ErrConflict) && !errors.Is(rerr, ErrNotFound) {
					complete, err = false, rerr
				}
				continue
			}
			notes = append(notes, w.reminder(t, since, now)...)
		}
		if len(notes) > 0 {
			k, eerr := s.cfg.Store.EnqueueNotifications(ctx, notes)
			if eerr != nil {
				return revoked, reminded, fmt.Errorf("enqueueing unused-token reminders: %w", eerr)
			}
			reminded += k
			w.mu.Lock()
			for _, n := range notes {
				w.reminded[n.Key] = *n.RevokeAt
			}
			w.mu.Unlock()
			s.notified()
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if complete {
		w.mu.Lock()
		w.swept = revokeBefore
		if from.IsZero() {
			w.lastFull = now
		}
		w.mu.Unlock()
	}
	return revoked, reminded, err
}

// reminder is the EventUnused notification of t, unused since since, for
// each destination; none when notifications are off or it was enqueued by
// an earlier sweep.
func (w *UnusedSweeper) reminder(t *Token, since, now time.Time) []Notification {
	dests := w.Service.cfg.Notify
	key := NotificationKey(EventUnused, "", t)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reminded == nil {
		w.reminded = map[string]time.Time{}
	}
	if _, done := w.reminded[key]; done || len(dests) == 0 {
		return nil
	}
	revokeAt := since.Add(w.After)
	ns := NewNotifications(EventUnused, "", t, "", now, dests)
	for i := range ns {
		ns[i].UnusedSince, ns[i].RevokeAt = &since, &revokeAt
	}
	return ns
}

// revoke revokes token id, unused since since, if it still is at or before
// revokeBefore and neither revoked nor expired now.
func (w *UnusedSweeper) revoke(ctx context.Context, id string, since, revokeBefore time.Time) error {
	s := w.Service
	_, err := s.revoke(ctx, id, revocation{by: ByUnused, may: anyToken, reason: RevokeUnused, unusedSince: &since,
		check: func(t *Token) error {
			end := t.ExpiresAt()
			if t.GeneratedAt == nil || t.UnusedSince().After(revokeBefore) || (end != nil && !end.After(s.Now())) {
				return errUsedMeanwhile
			}
			return nil
		}})
	return err
}
