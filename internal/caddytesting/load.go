package caddytesting

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Load sends requests from concurrent workers until Stop, and counts the
// answers by status (0: the connection closed without one) with their
// latencies.
type Load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	answered chan int // each status, when there is room

	mu        sync.Mutex
	byStatus  map[int]int
	latencies []time.Duration
}

// StartLoad starts workers that each send the requests of newRequest through
// client, one after the other.
func StartLoad(workers int, client *http.Client, newRequest func() *http.Request) *Load {
	l := &Load{stop: make(chan struct{}), answered: make(chan int, 1024), byStatus: map[int]int{}}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				status := 0
				if res, err := client.Do(newRequest()); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					status = res.StatusCode
				}
				took := time.Since(start)
				l.mu.Lock()
				l.byStatus[status]++
				l.latencies = append(l.latencies, took)
				l.mu.Unlock()
				select {
				case l.answered <- status:
				default:
				}
			}
		})
	}
	return l
}

// Wait waits for n answers of status from now (0: any answer at all).
func (l *Load) Wait(n, status int) {
	for len(l.answered) > 0 {
		<-l.answered
	}
	for n > 0 {
		if got := <-l.answered; status == 0 || got == status {
			n--
		}
	}
}

// LoadResult is what a Load counted.
type LoadResult struct {
	ByStatus  map[int]int     // answers by status; 0: no answer
	Latencies []time.Duration // sorted
}

// Stop stops the workers, waits for their requests in flight, and returns
// what they counted.
func (l *Load) Stop() LoadResult {
	close(l.stop)
	l.wg.Wait()
	slices.Sort(l.latencies)
	return LoadResult{ByStatus: l.byStatus, Latencies: l.latencies}
}

// Total is the number of requests sent.
func (r LoadResult) Total() int { return len(r.Latencies) }

// Percentile is the nearest-rank percentile of the latencies.
func (r LoadResult) Percentile(pct float64) time.Duration { return Percentile(r.Latencies, pct) }

// Percentile is the nearest-rank percentile of sorted durations.
func Percentile(sorted []time.Duration, pct float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*pct/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
