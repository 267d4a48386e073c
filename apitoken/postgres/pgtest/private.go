package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server of the test's own, which the test may stop
// and start to see what an outage does. Its data lives in a temporary
// folder and it is stopped when the test ends.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// DSN reaches the server's postgres database as the postgres user.
	DSN string
}

// Private starts a server of the test's own with Debian's PostgreSQL
// binaries. It runs them as the postgres user when the test runs as root
// (PostgreSQL refuses to run as root). The test is skipped when EnvVar is
// unset (PostgreSQL tests are off) and fails when the binaries cannot run.
func Private(t testing.TB) *Server {
	t.Helper()
	ServerDSN(t) // skip with the usual message when PostgreSQL tests are off
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Fatal("no /usr/lib/postgresql/*/bin/pg_ctl: install Debian's postgresql package")
	}
	s := &Server{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "pgtest-private")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(func() {
		s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "stop")
		os.RemoveAll(dir)
	})
	if err := serverOwns(dir); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port)
	tmpl, err := template(s.bin)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", tmpl, s.data()).CombinedOutput(); err != nil {
		t.Fatalf("copying the initdb template: %v\n%s", err, out)
	}
	s.Start()
	return s
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// run runs a PostgreSQL binary, as the postgres user when this is root.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	return run(s.bin, name, args...)
}

func run(bin, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
	}
	return cmd.CombinedOutput()
}

// serverOwns gives dir to the postgres user when this is root.
func serverOwns(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root and there is no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	return os.Chown(dir, uid, gid)
}

// template is the data folder of an initdb of bin's PostgreSQL, which each
// Private server copies instead of running initdb (seconds, where a copy
// takes a fraction). It is made once under the system's temporary folder
// and kept between runs; a lock lets the test binaries of two packages
// that start together make it once.
func template(bin string) (string, error) {
	sum := sha256.Sum256([]byte(bin))
	base := filepath.Join(os.TempDir(), fmt.Sprintf("pgtest-initdb-%d-%s", os.Geteuid(), hex.EncodeToString(sum[:6])))
	lock, err := os.OpenFile(base+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	data := filepath.Join(base, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return data, trusted(base)
	}
	os.RemoveAll(base) // an initdb that did not finish
	if err := os.Mkdir(base, 0o700); err != nil {
		return "", err
	}
	if err := serverOwns(base); err != nil {
		return "", err
	}
	if out, err := run(bin, "initdb", "-D", data+".new", "-U", "postgres", "--auth=trust", "--no-sync"); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// Only a finished initdb is found under the template's name.
	return data, os.Rename(data+".new", data)
}

// trusted checks that only this user (or the postgres user, when this is
// root) can change the template.
func trusted(base string) error {
	fi, err := os.Lstat(base)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	owner := os.Geteuid()
	if owner == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			return err
		}
		owner, _ = strconv.Atoi(pg.Uid)
	}
	if !ok || !fi.IsDir() || int(st.Uid) != owner || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is not a folder of the server user's that only it can write to", base)
	}
	return nil
}

// Start starts the server and waits until it takes connections.
func (s *Server) Start() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", s.port, s.dir)
	if out, err := s.run("pg_ctl", "-D", s.data(), "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "start"); err != nil {
		s.t.Fatalf("starting PostgreSQL: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.DSN)
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			s.t.Fatalf("PostgreSQL did not take connections: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server at once, dropping every connection, as a crash or
// a network cut would.
func (s *Server) Stop() {
	s.t.Helper()
	if out, err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop"); err != nil {
		s.t.Fatalf("stopping PostgreSQL: %v\n%s", err, out)
	}
}

// Freeze stops every process of the server (SIGSTOP) without closing a
// connection: to its clients it goes silent, as behind a network path that
// passes no bytes. New connections are accepted by the kernel and then hear
// nothing. Thaw undoes it; the test's end does too.
func (s *Server) Freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	s.t.Cleanup(func() { s.signal(syscall.SIGCONT) })
}

// Thaw lets a frozen server run again.
func (s *Server) Thaw() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

// signal sends sig to the postmaster and every process it started.
func (s *Server) signal(sig syscall.Signal) {
	b, err := os.ReadFile(filepath.Join(s.data(), "postmaster.pid"))
	if err != nil {
		s.t.Fatalf("reading the postmaster's pid: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		s.t.Fatalf("postmaster.pid: %v", err)
	}
	pids := []int{postmaster}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == postmaster {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && pid == postmaster {
			s.t.Fatalf("signalling the postmaster: %v", err)
		}
	}
}
