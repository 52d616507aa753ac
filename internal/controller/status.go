package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// statusTimeout bounds one write of the status key.
const statusTimeout = 5 * time.Second

// Status is what the controller records at StatusKey: its progress and
// how each gateway of the cloud config resolved to a host (a gateway whose
// host has not registered yet is GatewayPending there).
type Status struct {
	Applied
	Gateways []translate.GatewayStatus `json:"gateways,omitempty"`
}

func (c *Controller) currentStatus() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Applied: c.applied, Gateways: c.gateways}
}

// writeStatus keeps StatusKey at the latest Status, off the writer loop so
// that recording progress never delays the next round. Intermediate values
// are skipped; a failed write is retried on the next change or after a
// second.
func (c *Controller) writeStatus(ctx context.Context) {
	var written []byte
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.status:
		case <-retry:
			retry = nil
		}
		st := c.currentStatus()
		if st.Applied == (Applied{}) {
			continue // nothing realized yet: a status would read as progress
		}
		b, _ := json.Marshal(st) // plain struct
		if bytes.Equal(b, written) {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, statusTimeout)
		err := c.store.PutControllerStatus(wctx, b)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("writing the controller status failed", "err", err)
			retry = time.After(time.Second)
			continue
		}
		written = b
	}
}

// ReadStatus reads the progress in the status key as any process sees it
// (zero when it was never written).
func ReadStatus(ctx context.Context, store *nsdb.Store) (Applied, error) {
	st, err := ReadFullStatus(ctx, store)
	return st.Applied, err
}

// ReadFullStatus reads the status key: progress and gateways.
func ReadFullStatus(ctx context.Context, store *nsdb.Store) (Status, error) {
	var st Status
	v, found, err := store.ControllerStatus(ctx)
	if err != nil || !found {
		return st, err
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("decode controller status: %w", err)
	}
	return st, nil
}
