package caddytesting

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build = sync.OnceValues(func() (string, error) {
	d, err := binDir()
	if err != nil {
		return "", err
	}
	// One build at a time: the test binaries of two packages run side by
	// side, and the second finds the first's binary up to date.
	lock, err := os.OpenFile(filepath.Join(d, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	bin := filepath.Join(d, "caddy")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/caddy-apitokens/caddy-apitokens/cmd/caddy").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
})

// binDir is the folder of the built caddy of this checkout: one per
// module folder and user under the system's temporary folder, kept
// between runs, so that go build, which leaves an up-to-date binary as it
// is, links it only when the code changed, once for all the test binaries
// that run it.
func binDir() (string, error) {
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	sum := sha256.Sum256(bytes.TrimSpace(mod))
	user := filepath.Join(os.TempDir(), fmt.Sprintf("caddytesting-%d", os.Getuid()))
	d := filepath.Join(user, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	// Only a folder of this user's, which no one else can write to,
	// holds a binary the tests run.
	for _, p := range []string{user, d} {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || !fi.IsDir() || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o022 != 0 {
			return "", fmt.Errorf("%s is not a folder of this user's that only it can write to", p)
		}
	}
	return d, nil
}

// BuildCaddy builds cmd/caddy (Caddy with this plugin, as xcaddy would)
// once per test binary, into binDir, and returns its path.
func BuildCaddy(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Process is a Caddy process of the built caddy binary.
type Process struct {
	Name   string
	Dir    string // its folder: the Caddyfile, its log, its data and config
	Log    string // its standard output and error
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartProcess runs `caddy run` with config (a Caddyfile) in a folder of
// its own, which holds its data and config (XDG_DATA_HOME,
// XDG_CONFIG_HOME), with env (NAME=value) added to the environment. At the
// end of the test it is stopped with SIGTERM (killed after 15 s), and its
// log shown if the test failed.
func StartProcess(t testing.TB, name, config string, env ...string) *Process {
	t.Helper()
	bin := BuildCaddy(t)
	d := t.TempDir()
	p := &Process{Name: name, Dir: d, Log: filepath.Join(d, "caddy.log"), exited: make(chan struct{})}
	cfgFile := filepath.Join(d, "Caddyfile")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--config", cfgFile, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(), append(env, "XDG_DATA_HOME="+filepath.Join(d, "data"), "XDG_CONFIG_HOME="+filepath.Join(d, "config"))...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			t.Errorf("caddy %s did not stop within 15s of SIGTERM; killing it", name)
			p.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.Log)
			t.Logf("caddy %s log:\n%s", name, b)
		}
	})
	return p
}

// Kill kills the process (kill -9) and waits for it to end.
func (p *Process) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// WaitReady waits until ready reports true, for up to 60 s; it fails t at
// once if the process exits.
func (p *Process) WaitReady(t testing.TB, ready func() bool) {
	t.Helper()
	Eventually(t, 60*time.Second, "caddy "+p.Name+" answering", func() bool {
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.Log)
			t.Fatalf("caddy %s exited at start:\n%s", p.Name, b)
		default:
		}
		return ready()
	})
}

// Answers reports whether GET url gets an answer.
func Answers(url string) func() bool {
	return func() bool {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	}
}
