package caddytesting

import (
	"testing"
	"time"
)

// Eventually waits until done reports true, checking it every 10 ms, for
// what happens in the background (a flush, a process starting, a store
// back up). It fails t if that takes over within.
func Eventually(t testing.TB, within time.Duration, what string, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !done(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
	}
}
