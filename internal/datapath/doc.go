// Package datapath is the agent's Linux packet I/O: ports attached to the
// host side of their devices with AF_PACKET (Netdev: a hypervisor's TAP, the
// host end of a veth, an uplink), TAP devices the agent itself owns (the
// metadata relay, a gateway's speaker port), both with the virtio-net header
// offloads, the VXLAN tunnel socket, and the software fallbacks (GSO
// segmentation, checksum completion) used when an egress cannot take a large
// segment. datapathfake is an in-memory Port for component tests.
//
// What it is for: moving frames between the kernel and the agent as cheaply
// as this machine allows (reference/datapath-notes.md): whole 64 KB
// segments through packet sockets and TAPs, batched UDP with GSO/GRO
// through the tunnel, reads into caller-owned buffers, no allocation per
// packet.
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
