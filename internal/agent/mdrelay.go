package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/metadata"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The metadata relay. One HTTP listener per agent serves every VM on the
// host; it lives in a network namespace of its own (the "metadata
// namespace"), reached only through a TAP the agent holds, so it never
// touches the host's addresses or routes and a VM's address never has to
// be routable on the host.
//
// A VM's frame to 169.254.169.254:80 is taken at its port, its source is
// rewritten to the port's own address in that namespace (10.0.0.0/8 plus
// the port's 24-bit tunnel key: unique per port on this host, so
// overlapping VPC CIDRs stay apart) and it is written into the TAP, where
// the namespace's kernel terminates TCP for the listener. The listener
// names the instance by the connection's source address. The replies come
// out of the TAP towards that address; the agent maps it back to the port,
// puts back the VM's address and MAC, the router MAC as source, and writes
// the frame to the VM. The namespace's TAP has ARP off, so the kernel
// addresses every reply to the TAP's own MAC and the agent answers no ARP
// there. Checksums are updated incrementally (partial ones from the
// offloads included), as the flow actions do.

const (
	mdDevice    = "md0"
	mdSrcNet    = 10 << 24 // 10.0.0.0/8: the per-port source addresses
	mdConnIdle  = 10 * time.Minute
	mdMaxConns  = 1 << 16
	mdSecretLen = 32
)

var (
	mdMAC     = [6]byte{0x02, 0xa9, 0xfe, 0xa9, 0xfe, 0x00} // the metadata TAP's own MAC
	mdPeerMAC = [6]byte{0x02, 0xa9, 0xfe, 0xa9, 0xfe, 0x01} // source of frames the agent injects
)

// mdSource is a port's address in the metadata namespace.
func mdSource(key uint32) uint32 { return mdSrcNet | key&datapath.MaxVNI }

// mdRelay is the running relay.
type mdRelay struct {
	ns  netns.NsHandle // the metadata namespace
	tap datapath.Port
	srv *http.Server
	ln  net.Listener

	wmu sync.Mutex
	one [1]datapath.Packet

	mu    sync.Mutex
	conns map[mdConnKey]*mdConn
	done  chan struct{} // closed when the TAP reader has returned
}

// mdConnKey names one VM connection: the port's tunnel key and the VM's
// TCP source port.
type mdConnKey struct {
	key  uint32
	port uint16
}

// mdConn is what the reply direction puts back.
type mdConn struct {
	ip      uint32  // the VM's address
	mac, gw [6]byte // the VM's MAC, the MAC it sent to (the router's)
	used    int64
}

// openMetadata creates the metadata namespace, its TAP and the listener.
func (a *Agent) openMetadata() (*mdRelay, error) {
	secret, err := metadataSecret(a.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	h, err := metadata.New(metadata.Config{Resolve: metadata.SourceResolver(a.metadataInstance), Secret: secret})
	if err != nil {
		return nil, err
	}
	m := &mdRelay{conns: map[mdConnKey]*mdConn{}, done: make(chan struct{})}
	if err := m.open(); err != nil {
		return nil, fmt.Errorf("metadata namespace: %w", err)
	}
	// Instances are tenants: none may hold a connection or a goroutine for long.
	m.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	return m, nil
}

// open does the namespace work on one locked thread: the TAP and the
// listening socket are created inside the namespace and keep working from
// any thread afterwards.
func (m *mdRelay) open() (err error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	defer func() {
		// A thread that cannot go home must die with its goroutine.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	// Unnamed: the namespace lives exactly as long as the TAP and the
	// listening socket inside it, so a killed agent leaves nothing behind.
	// The handle is kept open for an operator: nsenter
	// --net=/proc/<agent pid>/fd/<fd> enters it (the start log names both).
	ns, err := netns.New()
	if err != nil {
		return err
	}
	tap, err := datapath.OpenTap(datapath.TapConfig{Name: mdDevice})
	if err != nil {
		ns.Close()
		return err
	}
	if err := configureMetadataNS(); err != nil {
		tap.Close()
		ns.Close()
		return err
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(MetadataIP, 80).String())
	if err != nil {
		tap.Close()
		ns.Close()
		return err
	}
	m.ns, m.tap, m.ln = ns, tap, ln
	return nil
}

// configureMetadataNS sets up the current (metadata) namespace: lo up, the
// TAP with the metadata address, ARP off, a large MTU (the VM's MSS decides
// segment sizes) and the route to the per-port sources.
func configureMetadataNS() error {
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	l, err := h.LinkByName(mdDevice)
	if err != nil {
		return err
	}
	steps := []func() error{
		func() error { return h.LinkSetHardwareAddr(l, mdMAC[:]) },
		func() error { return h.LinkSetARPOff(l) },
		func() error { return h.LinkSetMTU(l, 65000) },
		func() error {
			return h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: MetadataIP.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		},
		func() error { return h.LinkSetUp(l) },
		func() error {
			return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
				Dst: &net.IPNet{IP: net.IPv4(10, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}})
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("%s: %w", mdDevice, err)
		}
	}
	return nil
}

// metadataSecret keys the IMDSv2 tokens. It is kept in the state directory
// so tokens outlive an agent restart.
func metadataSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "metadata-secret")
	if b, err := os.ReadFile(path); err == nil && len(b) == mdSecretLen {
		return b, nil
	}
	b := make([]byte, mdSecretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata secret: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("metadata secret: %w", err)
	}
	return b, nil
}

// start serves the listener and reads the TAP until close.
func (a *Agent) startMetadata(m *mdRelay) {
	a.wg.Go(func() { _ = m.srv.Serve(m.ln) })
	a.wg.Go(func() { a.runMetadataRx(m) })
	a.log.Info("agent: metadata service up", "address", MetadataIP, "netns", fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(m.ns)))
}

// close stops the listener and the reader (started is false when
// startMetadata never ran); the namespace goes with the last of them.
func (m *mdRelay) close(started bool) {
	if started {
		_ = m.srv.Close()
	} else {
		_ = m.ln.Close()
	}
	m.tap.Close()
	if started {
		<-m.done
	}
	m.ns.Close()
}

// metadataInstance resolves a connection's source in the metadata
// namespace to the instance behind the port it stands for.
func (a *Agent) metadataInstance(src netip.Addr) (*metadata.Instance, bool) {
	if !src.Is4() || src.As4()[0] != 10 {
		return nil, false
	}
	key := packet.U32(src) & datapath.MaxVNI
	vp := a.ports.Load().byKey[key]
	v := a.view.Load()
	if vp == nil || v == nil {
		return nil, false
	}
	svc := v.svc[vp.id]
	if svc == nil {
		return nil, false
	}
	domain := ""
	for _, d := range svc.dhcp.Subnets {
		if d.DomainName != "" {
			domain = d.DomainName
			break
		}
	}
	return a.vpcs.instance(svc.object, domain)
}

// toMetadata relays a VM's frame to the listener (TCP to port 80 only).
func (a *Agent) toMetadata(vp *vport, svc *portSvc, frame []byte, hdr *datapath.VnetHdr, pkt *packet.Packet) {
	m := a.md
	switch {
	case m == nil:
		a.m.metadata.WithLabelValues("off").Inc()
		return
	case pkt.Proto != packet.ProtoTCP || pkt.DstPort != 80 || pkt.Flags&packet.FlagL4 == 0 || pkt.IsFragment():
		a.m.metadata.WithLabelValues("not_http").Inc()
		return
	}
	gw := pkt.EthDst
	if gw[0]&1 != 0 && svc != nil { // a group address: answer as the router
		gw = svc.gwMAC
	}
	ck := mdConnKey{vp.key, pkt.SrcPort}
	now := time.Now().UnixNano()
	m.mu.Lock()
	if c := m.conns[ck]; c != nil {
		c.ip, c.mac, c.gw, c.used = pkt.Src, pkt.EthSrc, gw, now
	} else if len(m.conns) < mdMaxConns {
		m.conns[ck] = &mdConn{ip: pkt.Src, mac: pkt.EthSrc, gw: gw, used: now}
	}
	m.mu.Unlock()

	csum := partialCsum(frame, hdr)
	setIP(frame, pkt, csum, false, mdSource(vp.key))
	packet.SetEthSrc(frame, pkt, mdPeerMAC)
	packet.SetEthDst(frame, pkt, mdMAC)
	m.wmu.Lock()
	m.one[0] = datapath.Packet{Buf: frame, N: len(frame), Hdr: *hdr}
	n, _ := m.tap.WriteBatch(m.one[:])
	m.one[0].Buf = nil
	m.wmu.Unlock()
	if n == 1 {
		a.m.metadata.WithLabelValues("to_listener").Inc()
	} else {
		a.m.metadata.WithLabelValues("tx_error").Inc()
	}
}

// runMetadataRx takes the listener's replies from the TAP back to the VMs.
func (a *Agent) runMetadataRx(m *mdRelay) {
	defer close(m.done)
	pkts := make([]datapath.Packet, readBatch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, datapath.MaxFrame)
	}
	var pkt packet.Packet
	for {
		n, err := m.tap.ReadBatch(pkts)
		if err != nil {
			if errors.Is(err, datapath.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		for i := range n {
			a.fromMetadata(m, &pkts[i], &pkt)
		}
	}
}

func (a *Agent) fromMetadata(m *mdRelay, p *datapath.Packet, pkt *packet.Packet) {
	frame := p.Frame()
	pkt.Decode(frame)
	// IPv6 neighbour discovery and the like from the namespace's kernel
	// are not for anyone.
	if !pkt.Has(packet.FlagIPv4|packet.FlagL4) || pkt.Proto != packet.ProtoTCP || pkt.Src != metadataIP32 ||
		pkt.SrcPort != 80 || pkt.Dst&^datapath.MaxVNI != mdSrcNet {
		return
	}
	key := pkt.Dst & datapath.MaxVNI
	vp := a.ports.Load().byKey[key]
	if vp == nil {
		a.m.metadata.WithLabelValues("no_port").Inc()
		return
	}
	var c mdConn
	m.mu.Lock()
	if e := m.conns[mdConnKey{key, pkt.DstPort}]; e != nil {
		e.used = time.Now().UnixNano()
		c = *e
	}
	m.mu.Unlock()
	if c.ip == 0 { // forgotten: the port's own address and MAC
		v := a.view.Load()
		svc := v.svc[vp.id]
		if svc == nil {
			a.m.metadata.WithLabelValues("no_port").Inc()
			return
		}
		for _, ip := range svc.dhcp.IPs {
			if ip.Is4() {
				c.ip = packet.U32(ip)
				break
			}
		}
		c.mac, c.gw = svc.dhcp.MAC, svc.gwMAC
	}
	csum := partialCsum(frame, &p.Hdr)
	setIP(frame, pkt, csum, true, c.ip)
	packet.SetEthSrc(frame, pkt, c.gw)
	packet.SetEthDst(frame, pkt, c.mac)
	vp.write(frame, p.Hdr)
	a.m.metadata.WithLabelValues("from_listener").Inc()
}

// expire forgets connections idle for mdConnIdle.
func (m *mdRelay) expire(now int64) {
	m.mu.Lock()
	for k, c := range m.conns {
		if now-c.used > int64(mdConnIdle) {
			delete(m.conns, k)
		}
	}
	m.mu.Unlock()
}
