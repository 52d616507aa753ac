package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// pluginRoots are where a machine image keeps terraform providers as a
// filesystem mirror (<root>/<registry host>/hashicorp/aws/<version>/…).
var pluginRoots = []string{"/opt/tf-plugins", "/usr/local/share/terraform/plugins", "/usr/share/terraform/plugins"}

// terraformTools finds terraform and a filesystem mirror holding the AWS
// provider 5.100.0. Under CI=true their absence fails the test (the machine
// image CI runs on has both); elsewhere the test says loudly that it did
// not run and how to get them.
func terraformTools(t *testing.T) (bin, mirror string) {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	for _, root := range pluginRoots {
		m, _ := filepath.Glob(filepath.Join(root, "*", "hashicorp", "aws", "5.100.0", "linux_amd64", "terraform-provider-aws_*"))
		if len(m) > 0 {
			mirror = root
			break
		}
	}
	if err == nil && mirror != "" {
		return bin, mirror
	}
	msg := fmt.Sprintf("terraform (on PATH: %v) and the AWS provider 5.100.0 as a filesystem mirror (under one of %v: found %q) are needed: "+
		"install terraform 1.11 and `terraform providers mirror` the provider into one of those directories", err == nil, pluginRoots, mirror)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("NOT RUN: " + msg)
	return "", ""
}

// stepTimeout bounds one terraform command (a hung provider would otherwise
// hold the test until the suite's timeout).
var stepTimeout = 10 * time.Minute

// tf runs terraform in dir inside the lab's infra namespace (where the EC2
// endpoint listens) with the tenant's keys.
type tf struct {
	t        *testing.T
	l        *netns.Lab
	bin, dir string
	env      []string
}

func (x *tf) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", x.l.InfraNS(), x.bin, "-chdir=" + x.dir}, args...)...)
	cmd.Env = x.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// step runs one timed terraform step and fails the test if it fails.
func (x *tf) step(name string, args ...string) string {
	x.t.Helper()
	start := time.Now()
	out, err := x.run(args...)
	x.t.Logf("terraform %s: %v", name, time.Since(start).Round(10*time.Millisecond))
	if err != nil {
		x.t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, tail(out, 120))
	}
	return out
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// importID is how `terraform import` names a resource of each importable
// type, read from its state attributes.
var importID = map[string]func(v map[string]any) string{
	"aws_vpc":                             attr("id"),
	"aws_default_vpc":                     attr("id"),
	"aws_subnet":                          attr("id"),
	"aws_default_subnet":                  attr("id"),
	"aws_internet_gateway":                attr("id"),
	"aws_route_table":                     attr("id"),
	"aws_default_route_table":             attr("vpc_id"),
	"aws_security_group":                  attr("id"),
	"aws_default_security_group":          attr("id"),
	"aws_vpc_security_group_ingress_rule": attr("id"),
	"aws_vpc_security_group_egress_rule":  attr("id"),
	"aws_network_acl":                     attr("id"),
	"aws_default_network_acl":             attr("id"),
	"aws_network_acl_association":         attr("id"),
	"aws_network_interface":               attr("id"),
	"aws_eip":                             attr("id"),
	"aws_eip_association":                 attr("id"),
	"aws_nat_gateway":                     attr("id"),
	"aws_vpc_dhcp_options":                attr("id"),
	"aws_vpc_dhcp_options_association":    attr("vpc_id"),
	"aws_key_pair":                        attr("key_name"),
	"aws_instance":                        attr("id"),
	"aws_route": func(v map[string]any) string {
		return fmt.Sprint(v["route_table_id"], "_", v["destination_cidr_block"])
	},
	"aws_route_table_association": func(v map[string]any) string {
		return fmt.Sprint(v["subnet_id"], "/", v["route_table_id"])
	},
	"aws_network_acl_rule": func(v map[string]any) string {
		return fmt.Sprint(v["network_acl_id"], ":", v["rule_number"], ":", v["protocol"], ":", v["egress"])
	},
	"aws_security_group_rule": func(v map[string]any) string {
		src := fmt.Sprint(v["source_security_group_id"])
		if cs, ok := v["cidr_blocks"].([]any); ok && len(cs) > 0 {
			src = fmt.Sprint(cs[0])
		}
		return fmt.Sprint(v["security_group_id"], "_", v["type"], "_", v["protocol"], "_", v["from_port"], "_", v["to_port"], "_", src)
	},
}

func attr(name string) func(v map[string]any) string {
	return func(v map[string]any) string { return fmt.Sprint(v[name]) }
}

type tfResource struct {
	Address string         `json:"address"`
	Mode    string         `json:"mode"`
	Type    string         `json:"type"`
	Values  map[string]any `json:"values"`
}

func (x *tf) resources() []tfResource {
	x.t.Helper()
	out, err := x.run("show", "-json")
	if err != nil {
		x.t.Fatalf("terraform show: %v\n%s", err, tail(out, 40))
	}
	var st struct {
		Values struct {
			RootModule struct {
				Resources []tfResource `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		x.t.Fatalf("terraform show -json: %v", err)
	}
	return st.Values.RootModule.Resources
}

// TestTerraform drives terraform and the HashiCorp AWS provider (from the
// machine image's filesystem mirror, no network) against a lab's EC2
// endpoint through a configuration of every VPC-family resource type
// Canopy supports and a data source for each (testdata/terraform): apply,
// a second plan that must find nothing to do, terraform import of every
// importable resource (removed from the state and imported back, then a
// plan that must again find nothing), and destroy. Each step is timed in
// the log; whether destroy took under a minute is logged, not asserted.
func TestTerraform(t *testing.T) {
	bin, mirror := terraformTools(t)
	l := netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--ec2-public-pool", "203.0.113.0/28"}})
	l.AddInstanceHost("hv1")
	tn := newTenant(t, l)

	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "terraform", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "terraformrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)), 0o644); err != nil {
		t.Fatal(err)
	}
	x := &tf{t: t, l: l, bin: bin, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TF_CLI_CONFIG_FILE=" + rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"TF_VAR_endpoint=" + netns.EC2Endpoint, "AWS_ACCESS_KEY_ID=" + tn.key, "AWS_SECRET_ACCESS_KEY=" + tn.secret,
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}}
	// TF_LOG and TF_LOG_PATH pass through, to see the provider's calls.
	for _, k := range []string{"TF_LOG", "TF_LOG_PATH"} {
		if v := os.Getenv(k); v != "" {
			x.env = append(x.env, k+"="+v)
		}
	}
	x.step("init", "init", "-input=false", "-no-color")
	x.step("apply", "apply", "-input=false", "-no-color", "-auto-approve")
	out := x.step("output", "output", "-json", "checks")
	var checks map[string]any
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("outputs: %v\n%s", err, out)
	}
	for k, want := range map[string]any{"zones": 3.0, "region": "us-east-1", "default_vpc": true, "main_cidr": "10.40.0.0/16", "subnets": 2.0,
		"public_az": "us-east-1a", "igw_vpc": true, "rtb_routes": 1.0, "sg_name": "tf-web", "acls": 3.0, "eni_ip": "10.40.2.20", "eip": true,
		"nat_state": "available", "dhcp_domain": "tf.internal", "key_type": "ed25519", "web_type": "t3.micro"} {
		if checks[k] != want {
			t.Errorf("output %s = %v, want %v", k, checks[k], want)
		}
	}
	if pub, _ := checks["web_public"].(string); !strings.HasSuffix(pub, ".compute-1.amazonaws.com") {
		t.Errorf("the t3 instance's public DNS name: %q", pub)
	}
	x.planClean("second plan")

	// Import: every importable resource leaves the state and comes back by
	// its import id (import blocks: one terraform run imports them all);
	// the apply must import them and change nothing, and the plan after
	// must again find nothing to do.
	var addrs, blocks, imported []string
	for _, r := range x.resources() {
		if id := importID[r.Type]; r.Mode == "managed" && id != nil {
			addrs = append(addrs, r.Address)
			imported = append(imported, r.Type)
			blocks = append(blocks, fmt.Sprintf("import {\n  to = %s\n  id = %q\n}\n", r.Address, id(r.Values)))
		}
	}
	x.step("state rm", append([]string{"state", "rm", "-no-color"}, addrs...)...)
	if err := os.WriteFile(filepath.Join(dir, "imports.tf"), []byte(strings.Join(blocks, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	out = x.step("import", "apply", "-input=false", "-no-color", "-auto-approve")
	// An imported aws_key_pair is replaced: the provider cannot tell the
	// public key it was given from the one EC2 describes (its documented
	// behaviour on AWS too).
	want := fmt.Sprintf("Apply complete! Resources: %d imported, 1 added, 0 changed, 1 destroyed.", len(addrs))
	if !strings.Contains(out, want) {
		t.Errorf("terraform import of %d resources: want %q\n%s", len(addrs), want, tail(out, 100))
	}
	sort.Strings(imported)
	t.Logf("imported %d resources: %s", len(imported), strings.Join(imported, " "))
	x.planClean("plan after import")

	start := time.Now()
	out = x.step("destroy", "destroy", "-input=false", "-no-color", "-auto-approve")
	took := time.Since(start)
	t.Logf("terraform destroy took %v: under a minute: %v; the slowest: %s", took.Round(10*time.Millisecond), took < time.Minute, slowest(out, 4))
	// Nothing of the configuration is left but the default VPC.
	if vpcs := tn.ec2("describe-vpcs", "--filters", "Name=cidr,Values=10.40.0.0/16", "--query", "Vpcs[].VpcId"); vpcs != "" {
		t.Errorf("VPC left after destroy: %s", vpcs)
	}
}

// planClean runs terraform plan -detailed-exitcode and fails unless it
// finds nothing to change (exit code 0).
func (x *tf) planClean(name string) {
	x.t.Helper()
	start := time.Now()
	out, err := x.run("plan", "-input=false", "-no-color", "-detailed-exitcode")
	x.t.Logf("terraform %s: %v", name, time.Since(start).Round(10*time.Millisecond))
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		x.t.Errorf("terraform %s: changes planned\n%s", name, tail(out, 150))
	default:
		x.t.Fatalf("terraform %s: %v\n%s", name, err, tail(out, 80))
	}
}

// slowest lists the resources whose destruction took longest, from
// terraform's "ADDR: Destruction complete after 1m2s" lines.
func slowest(out string, n int) string {
	type took struct {
		addr string
		d    time.Duration
	}
	var all []took
	for _, line := range strings.Split(out, "\n") {
		addr, after, ok := strings.Cut(strings.TrimSpace(line), ": Destruction complete after ")
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(after); err == nil {
			all = append(all, took{addr, d})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d > all[j].d })
	var parts []string
	for _, x := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %v", x.addr, x.d))
	}
	return strings.Join(parts, ", ")
}
