package apitoken

import "context"

// The rule of AUTHENTICATE rows, written once: the Auditor applies it to
// what it queues in memory, and each Store to what it writes, against the
// rows the window already holds in the database (other instances write to
// the same windows, each folding in its own memory, so only the store's
// transaction sees the whole window).
//
// A token has at most MaxAuthRowsPerWindow rows in one window. foldReserve
// of them are kept for the folded rows, one per result (OK and Fail): a
// record starts a row of its own only while the window has fewer than
// MaxAuthRowsPerWindow-foldReserve rows; past that it is added to its own
// row if it has one, else to the folded row of its result, which is started
// when there is none. So a window never holds more than
// MaxAuthRowsPerWindow-foldReserve rows of their own plus the two folded
// ones, whatever the instances and batches, and no attempt is lost.

// foldReserve is how many of a window's MaxAuthRowsPerWindow rows are kept
// for the folded rows: one per result.
const foldReserve = 2

// AuthWindow is one token's audit window while records are added to it: the
// number of AUTHENTICATE rows it holds so far.
type AuthWindow struct {
	Rows int
}

// OwnRow reports whether r may be added to a row of its own, starting it if
// need be: r is not folded, and the window has room below the fold reserve.
// Otherwise r goes to its own row only if that row exists, else to the
// folded row of its result (Folded).
func (w AuthWindow) OwnRow(r *AuthRecord) bool {
	return r.Reason != ReasonFolded && w.Rows < MaxAuthRowsPerWindow-foldReserve
}

// Fits reports whether n records, none of them folded, can each start a row
// of their own without the window reaching the fold reserve: then they can
// be written without deciding one at a time.
func (w AuthWindow) Fits(n int) bool {
	return w.Rows+n <= MaxAuthRowsPerWindow-foldReserve
}

// Folded is r as it is added to the folded row of its token, window and
// result: reason ReasonFolded, no client IP or user agent.
func Folded(r AuthRecord) AuthRecord {
	r.Reason, r.ClientIP, r.UserAgent = ReasonFolded, "", ""
	return r
}

// AuthRowWriter is what AddAuthRecord needs of a store's transaction.
type AuthRowWriter interface {
	// UpsertAuthRow adds r to the row of its token, window, guarded app,
	// result, reason, client IP and user agent, or starts that row; it
	// reports whether it started one.
	UpsertAuthRow(ctx context.Context, r *AuthRecord) (started bool, err error)
	// AddToAuthRow adds r to that row if it exists, and reports whether
	// it did.
	AddToAuthRow(ctx context.Context, r *AuthRecord) (bool, error)
	// AddToFoldedRow adds r to the (first) folded row of its token, window
	// and result if there is one, and reports whether it did.
	AddToFoldedRow(ctx context.Context, r *AuthRecord) (bool, error)
}

// AddAuthRecord adds r to the window w by the rule, through tx, and counts
// in w the row it starts, if any.
func AddAuthRecord(ctx context.Context, tx AuthRowWriter, w *AuthWindow, r *AuthRecord) error {
	if w.OwnRow(r) {
		started, err := tx.UpsertAuthRow(ctx, r)
		if started {
			w.Rows++
		}
		return err
	}
	if r.Reason != ReasonFolded {
		if done, err := tx.AddToAuthRow(ctx, r); err != nil || done {
			return err
		}
	}
	f := Folded(*r)
	if done, err := tx.AddToFoldedRow(ctx, &f); err != nil || done {
		return err
	}
	// No folded row of this result yet: its upsert starts it.
	started, err := tx.UpsertAuthRow(ctx, &f)
	if started {
		w.Rows++
	}
	return err
}
