package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// checkFolder refuses a folder for the database that users other than its
// owner may write without the sticky bit: they could delete or replace the
// database file (and its -wal and -shm) even when the file itself is 0600.
// A group-writable folder is refused too: a member of the group could do the
// same, and the folder of a token store has no need to be shared. With the
// sticky bit (/tmp), only a file's owner may remove or rename it.
func checkFolder(dir string) error {
	if !modesMeanAnything() {
		return nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if m := info.Mode(); m.Perm()&0o022 != 0 && m&fs.ModeSticky == 0 {
		return fmt.Errorf("the token store's folder %s has mode %04o: users other than its owner may write it, and so could "+
			"replace the database to un-revoke tokens or make themselves admin; run chmod 700 %s", dir, m.Perm(), dir)
	}
	return nil
}

// checkFiles refuses a database file, or a -wal or -shm file beside it (SQLite
// reads both as part of the database), that group or others may write:
// whoever can write them can un-revoke tokens or make themselves admin.
// Reading is not refused: the store holds no secret that works as a
// credential (JWTs are kept as hashes of their jti).
func checkFiles(abs string) error {
	if !modesMeanAnything() {
		return nil
	}
	for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
		info, err := os.Stat(p)
		if p != abs && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o022 != 0 {
			return fmt.Errorf("the token store file %s has mode %04o: group or others may write it, and so un-revoke tokens "+
				"or make themselves admin; run chmod 600 %s", p, perm, p)
		}
	}
	return nil
}

// modesMeanAnything: on Windows, Go reports every writable file as 0666 and
// access is governed by ACLs, which these checks do not read.
func modesMeanAnything() bool { return runtime.GOOS != "windows" }
