// Package tempstore opens the throwaway embedded etcd store a benchmark
// runs against: in a new temporary directory, on free loopback ports. It is
// for the bench programs only; tests use internal/nsdb/nsdbtest.
package tempstore

import (
	"context"
	"net"
	"os"
	"path/filepath"

	"github.com/canopy-sdn/canopy/internal/nsdb"
)

// Open opens a store in a new temporary directory whose name starts with
// prefix. Closing it with the returned func also removes the directory.
func Open(ctx context.Context, prefix string) (s *nsdb.Store, closeAll func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	curl, err := freeURL()
	if err == nil {
		var purl string
		if purl, err = freeURL(); err == nil {
			s, err = nsdb.Open(ctx, nsdb.Config{DataDir: filepath.Join(dir, "etcd"), ClientURL: curl, PeerURL: purl})
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }, nil
}

// freeURL is an http:// URL on a loopback port free when it was asked for.
func freeURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "http://" + l.Addr().String(), nil
}
