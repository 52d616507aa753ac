package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
)

// statusTimeout bounds one write of the status key.
const statusTimeout = 5 * time.Second

// Status is what the controller records in the store (nsdb.ControllerStatus).
type Status = nsdb.ControllerStatus

func (c *Controller) currentStatus() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Applied: c.applied, Gateways: c.gateways}
}

// writeStatus keeps the stored status at the latest Status, off the writer loop so
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
		b, _ := json.Marshal(st) // plain struct: compared to skip a rewrite
		if bytes.Equal(b, written) {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, statusTimeout)
		err := c.store.PutControllerStatus(wctx, st)
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
	return store.ControllerStatus(ctx)
}
