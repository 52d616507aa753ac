package datapath

import "sync/atomic"

// PortStats are a device's counters, updated without locks on the hot path.
type PortStats struct {
	RxFrames  atomic.Uint64 // frames returned by ReadBatch (a GSO frame counts once)
	RxDropped atomic.Uint64 // frames read but dropped: truncated or malformed
	TxFrames  atomic.Uint64 // frames (or datagrams) handed to the kernel
	TxDropped atomic.Uint64 // frames dropped: malformed or rejected by the kernel
}
