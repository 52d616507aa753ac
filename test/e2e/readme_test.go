package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// readmeWalkthrough returns the canopy commands of the README's walk-through
// block, each split into arguments (without the leading "canopy").
func readmeWalkthrough(t *testing.T) [][]string {
	cmds, _ := readmeBlock(t, "walkthrough")
	return cmds
}

// readmeBlock returns the canopy commands between <!-- name:begin --> and
// <!-- name:end --> in README.md, and for each whether its trailing comment
// says the server refuses it.
func readmeBlock(t *testing.T, name string) (cmds [][]string, refused []bool) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- "+name+":begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("README.md has no %s:begin/end block", name)
	}
	for _, line := range strings.Split(block, "\n") {
		line, comment, _ := strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "```") || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] != "canopy" || strings.ContainsAny(line, `'"$|;&<>`+"`") {
			t.Fatalf("README walk-through line is not a plain canopy command: %q", line)
		}
		cmds = append(cmds, f[1:])
		refused = append(refused, strings.Contains(comment, "refused"))
	}
	return cmds, refused
}

// TestREADMEWalkthrough runs the README's walk-through verbatim: every
// command succeeds, the first port listing shows the link to the bridge and
// the last one (after deleting the bridge) does not.
func TestREADMEWalkthrough(t *testing.T) {
	cmds := readmeWalkthrough(t)
	if len(cmds) < 15 {
		t.Fatalf("README walk-through has only %d commands", len(cmds))
	}
	s := newServer(t)
	var listings []string
	for _, args := range cmds {
		out := s.cli(args...)
		if strings.Join(args, " ") == "router port list edge" {
			listings = append(listings, out)
			t.Logf("canopy %s\n%s", strings.Join(args, " "), out)
		}
	}
	if len(listings) != 2 {
		t.Fatalf("the walk-through should list the edge router's ports twice, got %d", len(listings))
	}
	if lineWith(listings[0], "tenant-gw", "bridge tenant") == "" || lineWith(listings[0], "uplink", "198.51.100.1/24", "gw1/eth1") == "" {
		t.Errorf("first listing does not show the link and the binding:\n%s", listings[0])
	}
	if lineWith(listings[1], "bridge tenant") != "" || lineWith(listings[1], "tenant-gw") == "" {
		t.Errorf("after deleting the bridge, tenant-gw should be unlinked:\n%s", listings[1])
	}

	more, refused := readmeBlock(t, "more")
	for i, args := range more {
		if refused[i] {
			s.cliFail(args...)
			continue
		}
		s.cli(args...)
	}
	if len(more) < 5 {
		t.Errorf("README's more block has %d commands", len(more))
	}
}

// TestExternalEtcd runs the README walk-through with the server on an
// external 3-node etcd cluster (Debian's etcd-server on loopback ports):
// nothing is embedded, everything works the same and survives a restart.
func TestExternalEtcd(t *testing.T) {
	cluster := nsdbtest.StartCluster(t, 3)
	s := newServerOn(t, cluster.Endpoints)
	for _, args := range readmeWalkthrough(t) {
		s.cli(args...)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "etcd")); !os.IsNotExist(err) {
		t.Errorf("with --etcd-endpoints the server must embed nothing, but %s/etcd exists (%v)", s.dataDir, err)
	}
	// The objects are in the cluster, under the store's prefix.
	ec, err := clientv3.New(clientv3.Config{Endpoints: cluster.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ec.Get(ctx, "/canopy/v1/topo/port/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	// The walk-through's edge router keeps its two ports (the bridge's went
	// with it); the VPC translator's own ports (canopy-edge to the transit
	// bridge) carry its owner label and are not counted.
	var operators int
	for _, kv := range resp.Kvs {
		if !strings.Contains(string(kv.Value), `"canopy.owner":"translate"`) {
			operators++
		}
	}
	if operators != 2 {
		t.Errorf("external etcd holds %d operator ports, want 2", operators)
	}
	before := snapshot(t, s.client())
	s.stop()
	s.start()
	after := snapshot(t, s.client())
	for k := range before {
		if before[k] != after[k] {
			t.Errorf("%s changed across a restart:\nbefore %s\nafter  %s", k, before[k], after[k])
		}
	}
	if ports := s.cli("router", "port", "list", "edge"); lineWith(ports, "uplink", "gw1/eth1") == "" {
		t.Errorf("after restart:\n%s", ports)
	}
}
