package datapath

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// pollFD is a non-blocking file descriptor whose operations wait in ppoll
// on the calling thread (not in Go's netpoller) and which Close can wake:
// an eventfd is polled alongside and signalled on close. Operations hold
// the read side of mu while they use the descriptor, so Close never closes
// a number another thread is about to read from (and that the kernel may
// already have handed out again).
type pollFD struct {
	fd     int
	evfd   int
	closed atomic.Bool
	mu     sync.RWMutex
	rdPoll [2]unix.PollFd
	wrPoll [2]unix.PollFd
}

func newPollFD(fd int) (*pollFD, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	p := &pollFD{fd: fd, evfd: ev}
	p.rdPoll = [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(ev), Events: unix.POLLIN}}
	p.wrPoll = [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}, {Fd: int32(ev), Events: unix.POLLIN}}
	return p, nil
}

// enter marks the start of an operation; false means closed.
func (p *pollFD) enter() bool {
	p.mu.RLock()
	if p.closed.Load() {
		p.mu.RUnlock()
		return false
	}
	return true
}

func (p *pollFD) exit() { p.mu.RUnlock() }

// wait blocks until the descriptor is ready for reading (write=false) or
// writing, or the pollFD is closed. Called between enter and exit.
func (p *pollFD) wait(write bool) error { return p.waitFor(write, nil) }

// waitFor is wait that also returns (nil) after timeout, if not nil.
func (p *pollFD) waitFor(write bool, timeout *unix.Timespec) error {
	fds := &p.rdPoll
	if write {
		fds = &p.wrPoll
	}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		_, err := unix.Ppoll(fds[:], timeout, nil)
		if err == unix.EINTR {
			continue
		}
		if p.closed.Load() || fds[1].Revents != 0 {
			return ErrClosed
		}
		if err != nil {
			return err
		}
		return nil
	}
}

// close wakes every waiter, waits for in-flight operations and closes both
// descriptors. Only the first call does anything.
func (p *pollFD) close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var one = [8]byte{1}
	_, _ = unix.Write(p.evfd, one[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	err := unix.Close(p.fd)
	_ = unix.Close(p.evfd)
	return err
}
