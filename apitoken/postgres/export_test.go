package postgres

import "time"

// SetWatchTimings shortens Watch's idle check for a test; the returned
// function restores them. Call it while no Watch runs.
func SetWatchTimings(idle, pingTimeout time.Duration) (restore func()) {
	oldIdle, oldPing := watchIdle, watchPingTimeout
	watchIdle, watchPingTimeout = idle, pingTimeout
	return func() { watchIdle, watchPingTimeout = oldIdle, oldPing }
}
