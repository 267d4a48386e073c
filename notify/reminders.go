package notify

import (
	"context"
	"fmt"
	"maps"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// ScanReminders enqueues the expiry reminders due now (apitoken.DueReminder)
// for every destination, and returns how many notifications it added.
// Reminders already in the outbox, enqueued by this scan before or by
// another instance, are not added again.
func (d *Deliverer) ScanReminders(ctx context.Context) (int, error) {
	d.init()
	dests := d.Destinations()
	if len(dests) == 0 {
		return 0, nil
	}
	now := d.now()
	d.mu.Lock()
	if d.reminded == nil {
		d.reminded = map[string]time.Time{}
	}
	for k, end := range d.reminded {
		if !end.After(now) {
			delete(d.reminded, k)
		}
	}
	d.mu.Unlock()

	added := 0
	page := apitoken.Page{Limit: 500}
	for {
		toks, next, err := d.Store.ListExpiringTokens(ctx, now, now.Add(apitoken.Reminder7dBefore), page)
		if err != nil {
			return added, fmt.Errorf("listing expiring tokens: %w", err)
		}
		var ns []apitoken.Notification
		keys := map[string]time.Time{}
		d.mu.Lock()
		for i := range toks {
			t := &toks[i]
			rem, ok := apitoken.DueReminder(t, now)
			if !ok {
				continue
			}
			key := apitoken.NotificationKey(apitoken.EventExpiring, rem, t)
			if _, done := d.reminded[key]; done {
				continue
			}
			keys[key] = *t.ExpiresAt()
			ns = append(ns, apitoken.NewNotifications(apitoken.EventExpiring, rem, t, "", now, dests)...)
		}
		d.mu.Unlock()
		if len(ns) > 0 {
			k, err := d.Store.EnqueueNotifications(ctx, ns)
			if err != nil {
				return added, fmt.Errorf("enqueueing expiry reminders: %w", err)
			}
			added += k
			d.mu.Lock()
			if d.reminded != nil { // not reset meanwhile by SetSenders
				maps.Copy(d.reminded, keys)
			}
			d.mu.Unlock()
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	if added > 0 {
		d.Logger.Debug("enqueued expiry reminders", zap.Int("count", added))
	}
	return added, nil
}
