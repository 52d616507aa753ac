package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the name of the admin token file in the data directory.
const TokenFile = "admin-token"

// EnsureAdminToken returns the admin token kept in <dataDir>/admin-token,
// creating it (32 random bytes, hex, mode 0600) on first start. The file is
// written under a temporary name and hard-linked into place, so a crash never
// leaves a half-written token and two servers starting at once agree on one.
func EnsureAdminToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, TokenFile)
	if tok, err := readToken(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	tmp, err := os.CreateTemp(dataDir, ".admin-token-*")
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; Chmod states the intent and survives
	// a changed default.
	err = errors.Join(tmp.Chmod(0o600), writeAll(tmp, tok+"\n"), tmp.Sync(), tmp.Close())
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readToken(path) // another process won the race
		}
		return "", fmt.Errorf("admin token: %w", err)
	}
	return tok, nil
}

func writeAll(f *os.File, s string) error {
	_, err := f.WriteString(s)
	return err
}

// readToken reads an existing token file, refusing one that others can read:
// the token is the key to the whole topology.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin token: %s has mode %04o; it must not be readable by group or others (chmod 600 it)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token: %s is empty; delete it to have a new token made", path)
	}
	return tok, nil
}

// SetAdminToken replaces the token kept in <dataDir>/admin-token (mode
// 0600, renamed into place): a server takes the cloud's token from the
// store and keeps a copy where the CLI and canopy up find it.
func SetAdminToken(dataDir, tok string) error {
	if cur, err := readToken(filepath.Join(dataDir, TokenFile)); err == nil && cur == tok {
		return nil
	}
	tmp, err := os.CreateTemp(dataDir, ".admin-token-*")
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = errors.Join(tmp.Chmod(0o600), writeAll(tmp, tok+"\n"), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dataDir, TokenFile))
	}
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	return nil
}
