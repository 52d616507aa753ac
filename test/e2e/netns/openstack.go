package netns

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"
)

// OpenStack runs Debian's OpenStack client (`openstack`) in the infra
// namespace against the server's Keystone (its default listener,
// 127.0.0.1:5000, whose catalog names the Neutron endpoint) as user in
// project; it returns the combined output.
func (l *Lab) OpenStack(user, password, project string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.infra, "openstack"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+l.dir, "OS_AUTH_URL=http://127.0.0.1:5000/v3", "OS_IDENTITY_API_VERSION=3",
		"OS_USERNAME="+user, "OS_PASSWORD="+password, "OS_PROJECT_NAME="+project,
		"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne", "OS_CLOUD=")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
