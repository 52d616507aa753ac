package netns

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"
)

// OpenStack runs Debian's OpenStack client (`openstack`) in the infra
// namespace with the credentials of an openrc (`canopy account create
// --openrc`: its OS_* variables, "K=V") against the server's Keystone, whose
// catalog names the Neutron endpoint; it returns the combined output.
func (l *Lab) OpenStack(openrc []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.infra, "openstack"}, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+l.dir, "OS_CLOUD="), openrc...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// ParseOpenrc returns the variables an openrc exports ("K=V", single
// quotes removed).
func ParseOpenrc(rc string) []string {
	var out []string
	for _, line := range strings.Split(rc, "\n") {
		kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, k+"="+strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'"))
	}
	return out
}
