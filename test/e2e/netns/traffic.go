package netns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Traffic that must survive: long-lived TCP connections echoing numbered
// lines, and UDP probes counting their echoes (the gateway failover tests
// and bench/edge).

// EchoConn is one long-lived TCP connection that sends a numbered line
// every tick and checks each echo.
type EchoConn struct {
	c          net.Conn
	sent, echo atomic.Int64
	err        atomic.Pointer[error]
}

// DialEchoes opens n connections to addr from namespace ns.
func DialEchoes(t testing.TB, ns, addr string, n int) []*EchoConn {
	t.Helper()
	conns := make([]*EchoConn, n)
	for i := range conns {
		var c net.Conn
		if err := InNamespace(ns, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 10*time.Second); return }); err != nil {
			t.Fatalf("connection %d to %s: %v", i, addr, err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = &EchoConn{c: c}
	}
	return conns
}

// ServeEcho echoes every TCP connection accepted on addr in namespace ns
// until the test ends.
func ServeEcho(t testing.TB, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := InNamespace(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// RunEchoes makes every connection send a numbered line each period and
// check its echo, until the returned stop is called (which waits).
func RunEchoes(conns []*EchoConn, period time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, ec := range conns {
		wg.Go(func() {
			buf := make([]byte, 64)
			fail := func(err error) { ec.err.Store(&err) }
			for seq := 0; ; seq++ {
				select {
				case <-done:
					return
				case <-time.After(period):
				}
				line := []byte(fmt.Sprintf("conn %03d line %06d\n", i, seq))
				_ = ec.c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := ec.c.Write(line); err != nil {
					fail(fmt.Errorf("write: %w", err))
					return
				}
				ec.sent.Add(int64(len(line)))
				if _, err := io.ReadFull(ec.c, buf[:len(line)]); err != nil {
					fail(fmt.Errorf("read: %w", err))
					return
				}
				if !bytes.Equal(buf[:len(line)], line) {
					fail(fmt.Errorf("echo %q, sent %q", buf[:len(line)], line))
					return
				}
				ec.echo.Add(int64(len(line)))
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// echoed returns how many bytes each connection has had echoed.
func Echoed(conns []*EchoConn) []int64 {
	out := make([]int64, len(conns))
	for i, ec := range conns {
		out[i] = ec.echo.Load()
	}
	return out
}

// StuckEchoes counts the connections, not failed, that have had no more
// than 64 bytes echoed since before.
func StuckEchoes(conns []*EchoConn, before []int64) int {
	n := 0
	for i, ec := range conns {
		if ec.err.Load() == nil && ec.echo.Load() <= before[i]+64 {
			n++
		}
	}
	return n
}

// CheckEchoes fails the test for every connection that broke or lost a
// byte (call after stop).
func CheckEchoes(t testing.TB, what string, conns []*EchoConn) {
	t.Helper()
	for i, ec := range conns {
		if e := ec.err.Load(); e != nil {
			t.Errorf("%s connection %d broke: %v (sent %d, echoed %d)", what, i, *e, ec.sent.Load(), ec.echo.Load())
		} else if s, e := ec.sent.Load(), ec.echo.Load(); s != e || s == 0 {
			t.Errorf("%s connection %d: sent %d bytes, %d echoed", what, i, s, e)
		}
	}
}

// ServeUDPEcho echoes every datagram arriving on addr in namespace ns
// until the test ends.
func ServeUDPEcho(t testing.TB, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := InNamespace(ns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// UDPProbe sends rate datagrams a second, spread over several flows
// (source ports, so ECMP spreads them over the gateways), to an echo
// server, and counts the echoes.
type UDPProbe struct {
	conns          []net.Conn
	rate           int
	start          time.Time
	sent, received atomic.Int64
	stop           chan struct{}
	wg             sync.WaitGroup
	mu             sync.Mutex
	got            map[int64]bool // sequence numbers echoed
	from           int64          // the first sequence number counted
}

func StartUDPProbe(t testing.TB, ns, addr string, rate, flows int) *UDPProbe {
	t.Helper()
	p := &UDPProbe{rate: rate, stop: make(chan struct{}), start: time.Now(), got: map[int64]bool{}}
	for range flows {
		var c net.Conn
		if err := InNamespace(ns, func() (err error) { c, err = net.Dial("udp4", addr); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		p.conns = append(p.conns, c)
		p.wg.Go(func() {
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue // an ICMP error reported on the socket
				}
				if n >= 8 {
					p.mu.Lock()
					p.got[int64(binary.BigEndian.Uint64(buf))] = true
					p.mu.Unlock()
				}
				p.received.Add(1)
			}
		})
	}
	// The sender: paced by the clock, not by ticks (a loaded machine
	// drops ticks; the deficit goes out at the next one).
	p.wg.Go(func() {
		start := p.start
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var seq int64
		msg := make([]byte, 32)
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			due := int64(time.Since(start).Seconds() * float64(rate))
			for ; seq < due; seq++ {
				// A send the kernel refuses (no route, an ICMP error
				// reported on the socket) counts as sent and lost.
				binary.BigEndian.PutUint64(msg, uint64(seq))
				_, _ = p.conns[seq%int64(len(p.conns))].Write(msg)
				p.sent.Add(1)
			}
		}
	})
	return p
}

// Warm waits until every flow of the probe has had an echo, and counts
// only the datagrams sent from then on: the first datagrams of new flows
// are not what the tests measure.
func (p *UDPProbe) Warm(t testing.TB) {
	t.Helper()
	flows := int64(len(p.conns))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p.mu.Lock()
		seen := map[int64]bool{}
		for seq := range p.got {
			seen[seq%flows] = true
		}
		p.mu.Unlock()
		if int64(len(seen)) == flows {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo on %d of the probe's %d flows within 20 s", flows-int64(len(seen)), flows)
		}
	}
	p.mu.Lock()
	p.from = p.sent.Load()
	p.mu.Unlock()
}

// Elapsed is the time since the probe started (to place events beside
// LostAt's).
func (p *UDPProbe) Elapsed() time.Duration { return time.Since(p.start).Round(time.Millisecond) }

// LostAt lists when the datagrams not echoed were sent (since the start),
// runs of consecutive ones as one range (call after finish).
func (p *UDPProbe) LostAt() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	at := func(seq int64) time.Duration { return time.Duration(seq) * time.Second / time.Duration(p.rate) }
	for seq, n := p.from, p.sent.Load(); seq < n; seq++ {
		if p.got[seq] {
			continue
		}
		end := seq
		for end+1 < n && !p.got[end+1] {
			end++
		}
		out = append(out, fmt.Sprintf("%v+%d", at(seq), end-seq+1))
		seq = end
	}
	return out
}

// Finish stops sending, gives the last echoes time to come back (waiting
// until the count stops growing), closes the sockets and returns how many
// were sent and how many were lost.
func (p *UDPProbe) Finish() (sent, lost int64) {
	close(p.stop)
	last := int64(-1)
	for p.received.Load() != last {
		last = p.received.Load()
		time.Sleep(300 * time.Millisecond)
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	sent = p.sent.Load() - p.from
	for seq := range p.got {
		if seq >= p.from {
			sent--
		}
	}
	return p.sent.Load() - p.from, sent
}

// Err is why the connection broke, nil while it has not.
func (ec *EchoConn) Err() error {
	if e := ec.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Sent and Echo are the bytes sent and the bytes echoed back so far.
func (ec *EchoConn) Sent() int64 { return ec.sent.Load() }
func (ec *EchoConn) Echo() int64 { return ec.echo.Load() }

// UDPRequests opens n new UDP flows from namespace ns to addr (a socket,
// so a source port, each), sends one datagram on each, one flow every
// gap, and returns the flows whose one datagram was not echoed within
// timeout of being sent: each is the first packet of a new flow, with no
// retransmission to hide its loss.
func UDPRequests(t testing.TB, ns, addr string, n int, gap, timeout time.Duration) (lost []int) {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		if err := InNamespace(ns, func() (err error) { conns[i], err = net.Dial("udp4", addr); return }); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	answered := make([]bool, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		msg := []byte(fmt.Sprintf("request %d", i))
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("flow %d to %s: %v", i, addr, err)
		}
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				m, err := c.Read(buf)
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
						return
					}
					continue // an ICMP error reported on the socket
				}
				if string(buf[:m]) == string(msg) {
					answered[i] = true
					return
				}
			}
		})
		time.Sleep(gap)
	}
	wg.Wait()
	for i, ok := range answered {
		if !ok {
			lost = append(lost, i)
		}
	}
	return lost
}
