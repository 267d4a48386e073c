package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// measure runs one load of c and reads, around it, the CPU time of the Caddy
// process pid (ticks a second) and its count of heap allocations. Nothing
// else reads Caddy between the two readings of its CPU time; the one
// /metrics scrape inside the allocation count is a few hundred allocations
// against hundreds of thousands of requests.
func measure(pid int, ticks float64, c config, jwt string, d time.Duration) result {
	mallocs := metric("go_memstats_mallocs_total")
	cpu := cpuTicks(pid)
	r := wrk(c, jwt, d)
	used := cpuTicks(pid) - cpu
	if r.requests == 0 {
		fatalf("%s: wrk counted no request", c.name)
	}
	r.cpuUS = float64(used) / ticks * 1e6 / float64(r.requests)
	r.allocs = (metric("go_memstats_mallocs_total") - mallocs) / float64(r.requests)
	return r
}

// cpuTicks is utime + stime of process pid, all its threads, in clock
// ticks: fields 14 and 15 of /proc/<pid>/stat.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// pid (comm) state ppid ...: comm may hold spaces, so count after ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		fatalf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	check(errors.Join(err1, err2))
	return utime + stime
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	countRe   = regexp.MustCompile(`(\d+) requests in`)
	errorsRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// wrk runs one load of c and parses what wrk printed.
func wrk(c config, jwt string, d time.Duration) result {
	out := output("taskset", "-c", *loadCPU, "wrk", "-t1", "-c"+strconv.Itoa(*conns), "-d"+d.String(), "--latency",
		"-H", "Authorization: Bearer "+jwt, fmt.Sprintf("http://127.0.0.1:%d%s", c.port, *path))
	if m := errorsRe.FindString(out); m != "" {
		fatalf("%s: %s", c.name, m)
	}
	var r result
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		fatalf("%s: cannot read wrk's output:\n%s", c.name, out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, l := range latencyRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		switch l[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if l[1] == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	if m := countRe.FindStringSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r
}

// metric reads one series from Caddy's metrics endpoint.
func metric(series string) float64 {
	res, err := http.Get("http://" + adminAddr + "/metrics")
	check(err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			check(err)
			return f
		}
	}
	return 0
}
