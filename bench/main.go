// Command bench is the load benchmark: plain Caddy against Caddy with
// api_token_auth, behind reverse_proxy and with respond, run interleaved on
// loopback with wrk. Caddy runs pinned to one core, wrk and the report
// backend on the other.
//
//	go run ./bench                          # 5 rounds of 10 s, 64 connections
//	go run ./bench -rounds 7 -duration 15s
//	go run ./bench -rounds 1 -duration 2s   # a quick check that it works
//	go run ./bench -pprof /tmp/prof         # also profiles each config
//
// It prints, per configuration (medians over the rounds), req/s, p50 and
// p99 from wrk, and Caddy's own CPU time and heap allocations per answered
// request: utime+stime of the Caddy process from /proc/<pid>/stat, and
// go_memstats_mallocs_total from its admin /metrics, read around each wrk
// run and divided by the requests wrk counted. Throughput on a shared
// machine swings by ±10 % between runs; the CPU time one request costs
// does not, so the guard's cost is given as the CPU and allocations it adds
// per request (guarded − plain of the same round, median over the rounds),
// beside the throughput and p99 ratios, each with its target.
//
// It also checks that the steady state made no store query and that every
// authentication was counted in the token's logs, and fails if not.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	rounds   = flag.Int("rounds", 5, "interleaved rounds")
	duration = flag.Duration("duration", 10*time.Second, "length of one wrk run")
	conns    = flag.Int("connections", 64, "wrk connections")
	caddyCPU = flag.String("caddy-cpu", "0", "cores Caddy is pinned to (taskset -c)")
	loadCPU  = flag.String("load-cpu", "1", "cores wrk and the backend are pinned to")
	path     = flag.String("path", "/data/sales", "request path (needs the report scope)")
	pprofDir = flag.String("pprof", "", "if set, profile Caddy under load for each config after the measured rounds: "+
		"a CPU profile and allocation profiles before and after the run, written to this folder")
)

// Targets of the guard against plain Caddy (docs/performance-method.md).
const (
	targetCPU          = 2.0  // µs of Caddy CPU the guard may add per request
	targetProxyRatio   = 0.95 // guarded/plain throughput behind reverse_proxy
	targetRespondRatio = 0.92 // guarded/plain throughput with respond
	targetP99          = 1.10 // guarded/plain p99
)

// config is one way of serving the same request.
type config struct {
	name string
	port int
}

var configs = []config{
	{"proxy plain", 8001},
	{"proxy guarded", 8002},
	{"respond plain", 8003},
	{"respond guarded", 8004},
}

const (
	adminAddr  = "127.0.0.1:2399"
	manageBase = "http://127.0.0.1:8005"
)

// children are the processes started, stopped by fatalf too: log.Fatal
// would skip deferred stops and leave Caddy running.
var children []*exec.Cmd

func fatalf(format string, args ...any) {
	for _, c := range children {
		stop(c)
	}
	log.Fatalf(format, args...)
}

type result struct {
	rps, p50, p99 float64 // req/s, ms, ms
	requests      int64
	cpuUS         float64 // Caddy's CPU time (user + system) per request, µs
	allocs        float64 // Caddy's heap allocations per request
}

func main() {
	log.SetFlags(0)
	flag.Parse()
	if _, err := exec.LookPath("wrk"); err != nil {
		fatalf("wrk is not installed: apt-get install -y wrk")
	}
	dir, err := os.MkdirTemp("", "apitokens-bench")
	check(err)
	defer os.RemoveAll(dir)

	caddy := filepath.Join(dir, "caddy")
	log.Printf("building caddy into %s", caddy)
	run("go", "build", "-o", caddy, "./cmd/caddy")

	env := append(os.Environ(), "BENCH_DIR="+dir, "BENCH_KEY="+randomKey(),
		"BENCH_HASH="+strings.TrimSpace(output(caddy, "hash-password", "--plaintext", "bench")),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	backend := start(env, "taskset", "-c", *loadCPU, caddy, "run", "--config", "bench/backend.Caddyfile")
	defer stop(backend)
	server := start(env, "taskset", "-c", *caddyCPU, caddy, "run", "--config", "bench/Caddyfile")
	defer stop(server)
	waitFor("127.0.0.1:9080", "127.0.0.1:8005")
	pid := server.Process.Pid // taskset execs Caddy: same process
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "caddy" {
		fatalf("process %d is %q, not caddy: cannot read Caddy's CPU time", pid, strings.TrimSpace(string(comm)))
	}
	ticks, err := strconv.ParseFloat(strings.TrimSpace(output("getconf", "CLK_TCK")), 64)
	check(err)

	tokenID, jwt := makeToken()
	for _, c := range configs { // warm up every configuration and the caches
		wrk(c, jwt, 2*time.Second)
	}
	queriesBefore := metric("caddy_api_tokens_store_queries_total")
	oksBefore := metric(`caddy_api_tokens_authentications_total{reason="",result="OK"}`)
	measuredFrom := time.Now()

	results := map[string][]result{}
	for round := 0; round < *rounds; round++ {
		order := slices.Clone(configs)
		if round%2 == 1 {
			slices.Reverse(order) // A B A B ...: alternate which goes first
		}
		for _, c := range order {
			r := measure(pid, ticks, c, jwt, *duration)
			results[c.name] = append(results[c.name], r)
			log.Printf("round %d  %-16s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6.2f µs/req  %5.1f allocs/req",
				round+1, c.name, r.rps, r.p50, r.p99, r.cpuUS, r.allocs)
		}
	}

	fmt.Printf("\n%d rounds of %s, %d connections, Caddy on core %s, wrk and backend on core %s, GET %s\n\n",
		*rounds, *duration, *conns, *caddyCPU, *loadCPU, *path)
	fmt.Printf("| configuration | req/s | p50 ms | p99 ms | Caddy CPU µs/req | allocs/req |\n|---|---|---|---|---|---|\n")
	med := map[string]result{}
	for _, c := range configs {
		m := median(results[c.name])
		med[c.name] = m
		fmt.Printf("| %s | %.0f | %.2f | %.2f | %.2f | %.1f |\n", c.name, m.rps, m.p50, m.p99, m.cpuUS, m.allocs)
	}
	fmt.Printf("\n| guarded vs plain | throughput ratio | p99 ratio | added CPU µs/req (range over rounds) | added allocs/req |\n|---|---|---|---|---|\n")
	for _, kind := range []struct {
		name  string
		ratio float64
	}{{"proxy", targetProxyRatio}, {"respond", targetRespondRatio}} {
		g, p := med[kind.name+" guarded"], med[kind.name+" plain"]
		cpu := paired(results[kind.name+" guarded"], results[kind.name+" plain"], func(r result) float64 { return r.cpuUS })
		allocs := paired(results[kind.name+" guarded"], results[kind.name+" plain"], func(r result) float64 { return r.allocs })
		fmt.Printf("| %s | %.3f %s | %.2fx %s | %.2f (%.2f to %.2f) %s | %.1f |\n", kind.name,
			g.rps/p.rps, verdict(g.rps/p.rps >= kind.ratio, "≥ %.2f", kind.ratio),
			g.p99/p.p99, verdict(g.p99/p.p99 <= targetP99, "≤ %.2fx", targetP99),
			cpu[1], cpu[0], cpu[2], verdict(cpu[1] <= targetCPU, "≤ %.1f", targetCPU), allocs[1])
	}
	fmt.Println("\nadded CPU and allocs: guarded − plain of the same round, median (min to max) over the rounds;" +
		"\nthroughput and p99: ratio of the medians. Figures from a machine other processes share: throughput and p99 move with them, CPU per request much less.")

	// The one token's and its owner's state are trusted for cache_ttl (30 s)
	// and then read again: two queries per TTL, none per request.
	queries := metric("caddy_api_tokens_store_queries_total") - queriesBefore
	measured := time.Since(measuredFrom)
	allowed := 2 * (math.Ceil(measured.Seconds()/30) + 1)
	// Requests wrk gave up on at its end may still be in Caddy: let them
	// finish, and the audit writer flush (every 500 ms), before counting.
	time.Sleep(2 * time.Second)
	oks := metric(`caddy_api_tokens_authentications_total{reason="",result="OK"}`)
	fmt.Printf("\nstore queries during the measured runs: %.0f in %.0f requests over %s (the cache_ttl refresh allows %.0f)\n",
		queries, oks-oksBefore, measured.Round(time.Second), allowed)
	logged := loggedAuthentications(tokenID)
	fmt.Printf("authentications: %.0f by the guard's counter, %d in the token's logs\n", oks, logged)
	if queries > allowed || float64(logged) != oks {
		fatalf("FAIL: the steady state must make no store query per request and every authentication must be logged")
	}
	if *pprofDir != "" {
		profile(jwt)
	}
}

// paired is the min, median and max over the rounds of f(guarded) −
// f(plain) of the same round: a pair run back to back shares the machine's
// state, so the difference is steadier than one of medians.
func paired(guarded, plain []result, f func(result) float64) [3]float64 {
	d := make([]float64, min(len(guarded), len(plain)))
	for i := range d {
		d[i] = f(guarded[i]) - f(plain[i])
	}
	slices.Sort(d)
	return [3]float64{d[0], d[len(d)/2], d[len(d)-1]}
}

func verdict(ok bool, target string, args ...any) string {
	if ok {
		return "(target " + fmt.Sprintf(target, args...) + ": met)"
	}
	return "(target " + fmt.Sprintf(target, args...) + ": **missed**)"
}

// profile runs each config once more under a CPU profile of Caddy (its
// admin endpoint's /debug/pprof/profile), with allocation profiles taken
// before and after the run, so that the allocations of the run are their
// difference (go tool pprof -base). Each is the heap profile (the same
// cumulative allocation counts as /debug/pprof/allocs) taken after a
// garbage collection (?gc=1, which only the heap profile honours): the
// runtime publishes an allocation in the profile only when a collection
// cycle ends, so without it a short run's allocations may not be in it at
// all. The plain configs' profiles are the
// baseline: what a function costs the guarded config beyond them is the
// guard's.
func profile(jwt string) {
	check(os.MkdirAll(*pprofDir, 0o755))
	seconds := max(1, int(math.Ceil(duration.Seconds())))
	for _, c := range configs {
		name := strings.ReplaceAll(c.name, " ", "-")
		save(filepath.Join(*pprofDir, name+"-allocs-before.pb.gz"), "/debug/pprof/heap?gc=1")
		done := make(chan struct{})
		go func() {
			defer close(done)
			save(filepath.Join(*pprofDir, name+"-cpu.pb.gz"), "/debug/pprof/profile?seconds="+strconv.Itoa(seconds))
		}()
		time.Sleep(100 * time.Millisecond) // the profile has started
		r := wrk(c, jwt, time.Duration(seconds)*time.Second)
		<-done
		save(filepath.Join(*pprofDir, name+"-allocs-after.pb.gz"), "/debug/pprof/heap?gc=1")
		log.Printf("profiled %s: %d requests, %.0f req/s under the profiler", c.name, r.requests, r.rps)
	}
	fmt.Printf("\nprofiles in %s; for example:\n"+
		"  go tool pprof -top %[1]s/respond-guarded-cpu.pb.gz\n"+
		"  go tool pprof -top -focus caddymodule -ignore 'StaticResponse|reverseproxy\\.\\(\\*Handler\\)\\.ServeHTTP' %[1]s/respond-guarded-cpu.pb.gz   # the guard without the handler it guards\n"+
		"  go tool pprof -top -sample_index=alloc_objects -base %[1]s/respond-guarded-allocs-before.pb.gz %[1]s/respond-guarded-allocs-after.pb.gz\n",
		*pprofDir)
}

// save writes what Caddy's admin endpoint answers at p to file.
func save(file, p string) {
	res, err := http.Get("http://" + adminAddr + p)
	check(err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	check(err)
	if res.StatusCode != http.StatusOK {
		fatalf("GET %s: %d %s", p, res.StatusCode, b)
	}
	check(os.WriteFile(file, b, 0o644))
}

func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{rps: pick(func(r result) float64 { return r.rps }), p50: pick(func(r result) float64 { return r.p50 }),
		p99: pick(func(r result) float64 { return r.p99 }), cpuUS: pick(func(r result) float64 { return r.cpuUS }),
		allocs: pick(func(r result) float64 { return r.allocs })}
}

// makeToken gives the user bench the token role and a report token.
func makeToken() (id, jwt string) {
	manage("PUT", "/admin/users/bench/roles/api_tokens", nil, nil)
	var tok struct{ ID string }
	manage("POST", "/tokens", map[string]any{"name": "bench", "expires": "1d", "scopes": []string{"meta", "report"}}, &tok)
	var gen struct{ Token string }
	manage("POST", "/tokens/"+tok.ID+"/generate", nil, &gen)
	return tok.ID, gen.Token
}

// loggedAuthentications sums the AUTHENTICATE counts in the token's logs.
func loggedAuthentications(tokenID string) int64 {
	var sum int64
	cursor := ""
	for {
		var page struct {
			Logs []struct {
				Activity string
				Count    int64
			}
			NextCursor *string `json:"next_cursor"`
		}
		manage("GET", "/tokens/"+tokenID+"/logs?limit=1000&cursor="+cursor, nil, &page)
		for _, l := range page.Logs {
			if l.Activity == "AUTHENTICATE" {
				sum += l.Count
			}
		}
		if page.NextCursor == nil {
			return sum
		}
		cursor = *page.NextCursor
	}
}

func manage(method, p string, body, into any) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, manageBase+p, rd)
	req.SetBasicAuth("bench", "bench")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	check(err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		fatalf("%s %s: %d %s", method, p, res.StatusCode, b)
	}
	if into != nil {
		check(json.Unmarshal(b, into))
	}
}

func randomKey() string {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func start(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Start())
	children = append(children, cmd)
	return cmd
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

func waitFor(addrs ...string) {
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				fatalf("%s did not come up", a)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func output(name string, args ...string) string {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			fatalf("%s: %v\n%s", name, err, out.String())
		}
		check(err)
	}
	return out.String()
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}
