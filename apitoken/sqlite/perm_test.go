package sqlite_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
)

// The tests run as root, who may write any file: they set mode bits and
// check that Open reads them, never that a write is denied.

func skipWithoutModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix mode bits; Open does not check them there")
	}
}

// chmod sets mode exactly, whatever the umask.
func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// existingStore makes a database at dir/tokens.db, with its -wal and -shm
// left behind as after a crash, and returns its path.
func existingStore(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tokens.db")
	openStore(t, path).Close()
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestOpen_RefusesAStoreThatOthersMayWrite(t *testing.T) {
	skipWithoutModes(t)
	for _, tc := range []struct {
		name   string
		file   string // "" for the folder
		mode   fs.FileMode
		advice string // %s is the path
	}{
		{"a database file anyone may write", "tokens.db", 0o666, "chmod 600 %s"},
		{"a database file the group may write", "tokens.db", 0o660, "chmod 600 %s"},
		{"a database file others may write", "tokens.db", 0o602, "chmod 600 %s"},
		{"a -wal file anyone may write", "tokens.db-wal", 0o666, "chmod 600 %s"},
		{"a -shm file the group may write", "tokens.db-shm", 0o620, "chmod 600 %s"},
		{"a folder anyone may write", "", 0o777, "chmod 700 %s"},
		{"a folder others may write", "", 0o703, "chmod 700 %s"},
		{"a folder the group may write", "", 0o770, "chmod 700 %s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := existingStore(t, dir)
			target := dir
			if tc.file != "" {
				target = filepath.Join(dir, tc.file)
			}
			chmod(t, target, tc.mode)
			s, err := sqlite.Open(context.Background(), path)
			if err == nil {
				s.Close()
				t.Fatalf("Open accepted a store with %s at mode %04o", target, tc.mode)
			}
			msg := err.Error()
			if want := strings.ReplaceAll(tc.advice, "%s", target); !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
			if want := fmt.Sprintf("mode %04o", tc.mode); !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		})
	}
}

func TestOpen_AcceptsAStickyFolderAndFilesOnlyTheOwnerWrites(t *testing.T) {
	skipWithoutModes(t)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := existingStore(t, dir)
	// Like /tmp: anyone may create files, only their owner may remove or
	// rename them. Others may read the database: it holds no credential.
	chmod(t, dir, 0o777|fs.ModeSticky)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		chmod(t, p, 0o644)
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
}
