// Package datapath is the agent's Linux packet I/O: TAP devices with the
// virtio-net header offloads, the VXLAN tunnel socket, AF_PACKET uplinks, and
// the software fallbacks (GSO segmentation, checksum completion) used when an
// egress cannot take a large segment. datapathfake is an in-memory Port for
// component tests.
//
// What it is for: moving frames between the kernel and the agent as cheaply
// as this machine allows (reference/datapath-notes.md): whole 64 KB
// segments through TAPs, batched UDP with GSO/GRO through the tunnel, reads
// into caller-owned buffers, no allocation per packet.
//
// What it must not do: decide anything. It does not parse beyond what I/O
// needs (the virtio-net header, the VXLAN header, and the L3/L4 headers the
// segmenter rewrites), it keeps no flow state and it does not log per packet.
// Per-packet failures are sentinel errors, never freshly allocated ones.
//
// Concurrency: each device has at most one reader and one writer goroutine
// at a time (ReadBatch and WriteBatch own per-device scratch space). The
// reader should run on a locked OS thread (runtime.LockOSThread): reads block
// in the kernel instead of going through Go's netpoller, which costs 12–16 %
// here.
package datapath
