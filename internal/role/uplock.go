package role

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// upPIDFile is canopy up's claim on its data dir.
func upPIDFile(dataDir string) string { return filepath.Join(dataDir, "canopy-up.pid") }

// upLock is a running canopy up's exclusive flock on its pid file, held for
// the life of the process. The kernel drops it when the process dies however
// it dies, so what a kill -9 leaves behind never blocks the next canopy up —
// unlike a pid in a file, which outlives its process (a zombie, or a pid
// reused by another program, still "exists"). The file is never removed: an
// unlinked file's lock would let a second canopy up lock a new file beside
// it. It holds the holder's pid, for canopy down and for people.
type upLock struct{ f *os.File }

// lockUp takes the data dir's lock, or says which process holds it.
func lockUp(dataDir string) (*upLock, error) {
	f, err := os.OpenFile(upPIDFile(dataDir), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("canopy up already runs on %s (pid %d); canopy down stops it", dataDir, readPID(f))
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, err
	}
	return &upLock{f: f}, nil
}

// release empties the pid file and drops the lock (exit would drop it too).
func (l *upLock) release() {
	_ = l.f.Truncate(0)
	l.f.Close()
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// runningUp returns the pid of the canopy up holding dataDir's lock, or 0
// when none runs.
func runningUp(dataDir string) (int, error) {
	f, err := os.Open(upPIDFile(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case err == nil:
		return 0, nil // nobody holds it (closing f drops ours)
	case errors.Is(err, syscall.EWOULDBLOCK):
		if pid := readPID(f); pid > 0 {
			return pid, nil
		}
		return 0, fmt.Errorf("%s is locked but holds no pid", f.Name())
	default:
		return 0, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
}

// stopUp sends SIGTERM to the canopy up of dataDir and waits until it has let
// go of its lock (it has then removed its instances and stopped its store).
func stopUp(dataDir string, pid int, within time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for {
		p, err := runningUp(dataDir)
		if err != nil || p == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("canopy up (pid %d) did not stop within %s", pid, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
