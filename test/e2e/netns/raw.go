package netns

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Do runs f on a thread inside the VM's namespace (InNamespace). Sockets f
// opens stay in that namespace and can be used from any goroutine
// afterwards.
func (vm *VM) Do(f func() error) error { return InNamespace(vm.NS, f) }

// ListenUDP opens a UDP socket on addr (ip:port) inside the VM.
func (vm *VM) ListenUDP(addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := vm.Do(func() error {
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", a)
		return err
	})
	return c, err
}

// SendFrame writes an Ethernet frame on the VM's interface with an
// AF_PACKET socket, as a guest's raw socket would: the frame reaches the
// virtual network exactly as built, whatever the VM's own stack would send.
func (vm *VM) SendFrame(frame []byte) error {
	return vm.Do(func() error {
		ifi, err := net.InterfaceByName(vm.Tap)
		if err != nil {
			return err
		}
		// Protocol 0: the socket only sends, it receives nothing.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP)}
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("send on %s: %w", vm.Tap, err)
		}
		return nil
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// UDPFrame builds an Ethernet/IPv4/UDP frame with valid IP and UDP
// checksums. It is written here, independently of the agent's packet code,
// so a frame the test injects does not depend on the code under test.
func UDPFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) []byte {
	const ethLen, ipLen, udpLen = 14, 20, 8
	b := make([]byte, ethLen+ipLen+udpLen+len(payload))
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[ethLen : ethLen+ipLen]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen+udpLen+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], 1)
	ip[8], ip[9] = 64, 17 // TTL, UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip, 0))
	u := b[ethLen+ipLen:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	// Pseudo-header: addresses, protocol, UDP length.
	var pseudo uint32
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(s4[i:])) + uint32(binary.BigEndian.Uint16(d4[i:]))
	}
	pseudo += 17 + uint32(len(u))
	c := inetChecksum(u, pseudo)
	if c == 0 {
		c = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// inetChecksum is the RFC 1071 checksum of b, starting from acc.
func inetChecksum(b []byte, acc uint32) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		acc += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}
