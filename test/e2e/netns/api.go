package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InfraNS is the namespace the server listens in.
func (l *Lab) InfraNS() string { return l.infra }

// APIURL is the server's REST base URL (reachable from InfraNS).
func (l *Lab) APIURL() string { return fmt.Sprintf("http://%s:%d", infraIP, apiPort) }

// AdminToken is the token the server wrote at its first start.
func (l *Lab) AdminToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "server", "admin-token"))
	return strings.TrimSpace(string(b)), err
}
