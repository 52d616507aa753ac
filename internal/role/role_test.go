package role

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestRunAgentRefusesBadInput: a tunnel address or an instance driver the
// agent cannot use is refused, by flag name, before anything starts.
func TestRunAgentRefusesBadInput(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	never := func(string) bool { return false }
	for _, c := range []struct {
		cfg  AgentConfig
		want string
	}{
		{AgentConfig{TunnelIP: "10.0.0.300", Logger: log}, "--tunnel-ip"},
		{AgentConfig{TunnelIP: "192.0.2.1", Driver: "kvm", Logger: log}, `--instance-driver "kvm"`},
		{AgentConfig{TunnelIP: "192.0.2.1", Enrollment: t.TempDir(), Logger: log}, "--enrollment"},
	} {
		err := RunAgent(context.Background(), c.cfg, never)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
}

// TestUpCredentialsFile: what canopy up writes for an account, it reads
// back on the next start.
func TestUpCredentialsFile(t *testing.T) {
	content := "# canopy up: EC2 account demo (123456789012); source this file\nexport AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nexport AWS_SECRET_ACCESS_KEY=s3cr3t\nexport AWS_DEFAULT_REGION=us-east-1\nexport AWS_CA_BUNDLE=/x/ca.crt\n"
	info := parseCredentials(content)
	if info.AccountID != "123456789012" || info.AccessKeyID != "AKIAEXAMPLE" || info.SecretKey != "s3cr3t" {
		t.Fatalf("parsed %+v", info)
	}
}
