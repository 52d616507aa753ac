package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
)

// statusTimeout bounds one write of the status key.
const statusTimeout = 5 * time.Second

// writeStatus keeps StatusKey at the latest Applied, off the writer loop so
// that recording progress never delays the next round. Intermediate values
// are skipped; a failed write is retried on the next change or after a
// second.
func (c *Controller) writeStatus(ctx context.Context) {
	var written Applied
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.status:
		case <-retry:
			retry = nil
		}
		a := c.Applied()
		if a == written {
			continue
		}
		b, _ := json.Marshal(a) // plain struct
		wctx, cancel := context.WithTimeout(ctx, statusTimeout)
		_, err := c.store.Client().Put(wctx, c.store.Prefix()+StatusKey, string(b))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("writing the controller status failed", "err", err)
			retry = time.After(time.Second)
			continue
		}
		written = a
	}
}

// ReadStatus reads the status key as any process sees it (zero when it was
// never written).
func ReadStatus(ctx context.Context, store *nsdb.Store) (Applied, error) {
	var a Applied
	resp, err := store.Client().Get(ctx, store.Prefix()+StatusKey)
	if err != nil {
		return a, fmt.Errorf("read controller status: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return a, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &a); err != nil {
		return a, fmt.Errorf("decode controller status: %w", err)
	}
	return a, nil
}
