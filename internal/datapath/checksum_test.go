package datapath

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// naiveChecksum is RFC 1071 over 16-bit words, the reference.
func naiveChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// TestChecksumCarries covers the inputs whose 64-bit sums carry out at
// every step (runs of 0xff), where a dropped end-around carry shows, and
// random buffers of every length.
func TestChecksumCarries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200; n++ {
		for _, b := range [][]byte{bytes.Repeat([]byte{0xff}, n), randBytes(r, n)} {
			for _, init := range []uint16{0, 1, 0xffff} {
				if got, want := Checksum(b, init), naiveChecksum(b, init); got != want {
					t.Fatalf("len %d init %#x %x: got %#04x, want %#04x", n, init, b[:min(len(b), 16)], got, want)
				}
			}
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}
