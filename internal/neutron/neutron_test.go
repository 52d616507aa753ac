package neutron_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/keystone"
	"github.com/canopy-sdn/canopy/internal/neutron"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

const adminToken = "operator-secret"

// env is an EC2 server with the Neutron and Keystone endpoints in front of
// it, on a real embedded etcd.
type env struct {
	t        *testing.T
	store    *nsdb.Store
	vpcs     *nsdb.VPCStore
	ec2      *ec2.Server
	neutron  string
	keystone string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, _ := nsdbtest.OpenEmbedded(t)
	vs, err := nsdb.OpenVPCStore(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs.Close)
	key := make([]byte, 32)
	pool, err := ec2.ParsePool("203.0.113.0/29")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ec2.New(vs, ec2.Config{Key: key, PublicPool: pool})
	if err != nil {
		t.Fatal(err)
	}
	signer := keystone.NewSigner(key, nil)
	ns := httptest.NewServer(neutron.New(neutron.Config{EC2: srv, Signer: signer, MTU: 1450}))
	t.Cleanup(ns.Close)
	ks := httptest.NewServer(keystone.New(keystone.Config{Accounts: srv, Signer: signer, AdminToken: adminToken,
		NetworkURL: func(string) string { return ns.URL + "/" }}))
	t.Cleanup(ks.Close)
	return &env{t: t, store: s, vpcs: vs, ec2: srv, neutron: ns.URL, keystone: ks.URL}
}

// project is a Canopy account seen from OpenStack: its id and a token.
type project struct {
	id, name, token string
	e               *env
}

func (e *env) project(name string) *project {
	e.t.Helper()
	nc, err := e.ec2.CreateAccount(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, status, _ := e.auth(nc.AccessKeyID, nc.SecretAccessKey, name)
	if status != http.StatusCreated {
		e.t.Fatalf("auth as %s: %d", name, status)
	}
	return &project{id: nc.AccountID, name: name, token: tok, e: e}
}

// admin is the operator scoped to p's project.
func (e *env) admin(p *project) *project {
	tok, status, _ := e.auth("admin", adminToken, p.name)
	if status != http.StatusCreated {
		e.t.Fatalf("admin auth: %d", status)
	}
	return &project{id: p.id, name: p.name, token: tok, e: e}
}

// auth runs a password authentication scoped to project name.
func (e *env) auth(user, password, projectName string) (string, int, map[string]any) {
	e.t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": user, "password": password, "domain": map[string]string{"name": "Default"}}}},
		"scope": map[string]any{"project": map[string]any{"name": projectName, "domain": map[string]string{"name": "Default"}}},
	}}
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.keystone+"/v3/auth/tokens", "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.Header.Get("X-Subject-Token"), resp.StatusCode, doc
}

// do sends a request with p's token and decodes the answer.
func (p *project) do(method, path string, body any) (int, map[string]any) {
	p.e.t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.e.neutron+path, r)
	req.Header.Set("X-Auth-Token", p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// must sends a request that must answer want and returns the member.
func (p *project) must(want int, method, path string, body any, member string) map[string]any {
	p.e.t.Helper()
	status, doc := p.do(method, path, body)
	if status != want {
		p.e.t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, doc)
	}
	if member == "" {
		return doc
	}
	m, _ := doc[member].(map[string]any)
	return m
}

func ids(doc map[string]any, coll string) []string {
	var out []string
	for _, o := range doc[coll].([]any) {
		out = append(out, o.(map[string]any)["id"].(string))
	}
	return out
}

func TestKeystone(t *testing.T) {
	e := newEnv(t)
	a := e.project("alpha")
	nc, err := e.ec2.CreateAccount(context.Background(), "beta")
	if err != nil {
		t.Fatal(err)
	}
	// A good password: a token, the project, roles and the catalog naming
	// the network endpoint.
	tok, status, doc := e.auth(nc.AccessKeyID, nc.SecretAccessKey, "beta")
	if status != http.StatusCreated || tok == "" {
		t.Fatalf("auth: %d %q", status, tok)
	}
	b, _ := json.Marshal(doc)
	for _, want := range []string{`"type":"network"`, e.neutron + "/", `"name":"beta"`, `"name":"member"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("token document lacks %s: %s", want, b)
		}
	}
	// Wrong secret, another account's project, an unknown project, a wrong
	// admin password: 401, no token.
	for _, c := range [][3]string{
		{nc.AccessKeyID, "wrong", "beta"},
		{nc.AccessKeyID, nc.SecretAccessKey, "alpha"},
		{nc.AccessKeyID, nc.SecretAccessKey, "nobody"},
		{"admin", "wrong", "alpha"},
		{"AKIANOSUCHKEY", "x", "alpha"},
	} {
		if tok, status, _ := e.auth(c[0], c[1], c[2]); status != http.StatusUnauthorized || tok != "" {
			t.Errorf("auth %v: %d %q, want 401 and no token", c, status, tok)
		}
	}
	// Projects: a member sees its own, admin every one.
	req, _ := http.NewRequest("GET", e.keystone+"/v3/projects", nil)
	req.Header.Set("X-Auth-Token", a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ps struct{ Projects []struct{ ID, Name string } }
	_ = json.NewDecoder(resp.Body).Decode(&ps)
	resp.Body.Close()
	if len(ps.Projects) != 1 || ps.Projects[0].Name != "alpha" {
		t.Errorf("alpha's projects: %+v", ps.Projects)
	}
	// A forged token does not pass.
	forged := &project{token: tok[:len(tok)-3] + "AAA", e: e}
	if status, _ := forged.do("GET", "/v2.0/networks", nil); status != http.StatusUnauthorized {
		t.Errorf("forged token: %d, want 401", status)
	}
}

func TestNetworkSubnetPort(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	host := &topology.Host{Meta: topology.Meta{ID: "8d0c4a8e-5d4c-4a8b-9a62-2f2d4d1d2a01", Name: "compute1"}}
	if _, err := e.store.Create(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	// Discovery.
	if st, doc := p.do("GET", "/", nil); st != 200 || !strings.Contains(must(json.Marshal(doc)), `"v2.0"`) {
		t.Fatalf("versions: %d %v", st, doc)
	}
	p.must(200, "GET", "/v2.0/extensions/binding", nil, "extension")
	p.must(404, "GET", "/v2.0/extensions/dvr", nil, "")

	net := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "net1"}}, "network")
	netID := net["id"].(string)
	if net["mtu"].(float64) != 1450 || net["status"] != "ACTIVE" || net["project_id"] != p.id {
		t.Errorf("network: %v", net)
	}
	sub := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"name": "sub1", "network_id": netID, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")
	if sub["gateway_ip"] != "10.0.0.1" {
		t.Errorf("subnet: %v", sub)
	}
	port := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
		"name": "vm1", "network_id": netID, "binding:host_id": "compute1"}}, "port")
	portID := port["id"].(string)
	ip := port["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]
	if ip != "10.0.0.4" || port["binding:vif_type"] != "tap" || port["status"] != "DOWN" || port["binding:host_id"] != "compute1" {
		t.Errorf("port: %v", port)
	}
	p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
		"name": "vm2", "network_id": netID, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.20"}}}}, "port")

	// The network is a VPC whose block is its subnet's; the translator
	// binds the port to the TAP Nova names.
	var d *translate.Desired
	e.vpcs.Read(func(st *vpc.State) {
		if v := st.Vpcs[netID]; v.CidrBlock.String() != "10.0.0.0/24" || !v.Network {
			t.Errorf("network's VPC: %+v", v)
		}
		d = translate.Translate(st, translate.CloudConfig{})
	})
	found := false
	for _, o := range d.Objects {
		if tp, ok := o.(*topology.Port); ok && tp.ID == translate.ObjectID(portID, "port") {
			found = true
			if tp.HostID != host.ID || tp.Interface != neutron.TapName(portID) || !strings.HasPrefix(tp.Interface, "tapeni-") {
				t.Errorf("port binding: host %q interface %q", tp.HostID, tp.Interface)
			}
		}
	}
	if !found || len(d.Skipped) > 0 {
		t.Errorf("port realized %v, skipped %v", found, d.Skipped)
	}
	// GET of one port (its own read, not the list's) shows what the list
	// shows, DOWN until its host's agent reports it plugged, then ACTIVE.
	listed := func() map[string]any {
		for _, o := range p.must(200, "GET", "/v2.0/ports", nil, "")["ports"].([]any) {
			if o.(map[string]any)["id"] == portID {
				return o.(map[string]any)
			}
		}
		t.Fatalf("port %s not listed", portID)
		return nil
	}
	if got, want := p.must(200, "GET", "/v2.0/ports/"+portID, nil, "port"), listed(); !reflect.DeepEqual(got, want) || got["status"] != "DOWN" {
		t.Errorf("GET port: %v\nlisted: %v", got, want)
	}
	lease, err := e.store.GrantLease(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetPortActive(context.Background(), host.ID, translate.ObjectID(portID, "port"), lease); err != nil {
		t.Fatal(err)
	}
	if got, want := p.must(200, "GET", "/v2.0/ports/"+portID, nil, "port"), listed(); !reflect.DeepEqual(got, want) || got["status"] != "ACTIVE" {
		t.Errorf("GET port once active: %v\nlisted: %v", got, want)
	}

	// Lists: filters, fields, pagination with links.
	doc := p.must(200, "GET", "/v2.0/ports?name=vm1&fields=id&fields=name", nil, "")
	if got := doc["ports"].([]any); len(got) != 1 || len(got[0].(map[string]any)) != 2 {
		t.Errorf("filtered ports: %v", doc)
	}
	doc = p.must(200, "GET", "/v2.0/ports?fixed_ips=ip_address%3D10.0.0.20", nil, "")
	if len(doc["ports"].([]any)) != 1 {
		t.Errorf("fixed_ips filter: %v", doc)
	}
	doc = p.must(200, "GET", "/v2.0/ports?limit=1", nil, "")
	first := ids(doc, "ports")
	links, _ := doc["ports_links"].([]any)
	if len(first) != 1 || len(links) != 1 {
		t.Fatalf("page 1: %v", doc)
	}
	next := links[0].(map[string]any)["href"].(string)
	doc = p.must(200, "GET", strings.TrimPrefix(next, e.neutron), nil, "")
	second := ids(doc, "ports")
	if len(second) != 1 || second[0] == first[0] {
		t.Errorf("page 2: %v after %v", second, first)
	}

	// A rule on the port's group (the network's default), any remote (null, as Neutron): listed, realized
	// (nothing skipped), deleted.
	sg := port["security_groups"].([]any)[0].(string)
	rule := p.must(201, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}}, "security_group_rule")
	if rule["remote_ip_prefix"] != nil || rule["port_range_min"].(float64) != 80 {
		t.Errorf("rule: %v", rule)
	}
	doc = p.must(200, "GET", "/v2.0/security-group-rules?security_group_id="+sg+"&direction=ingress&protocol=tcp", nil, "")
	if got := ids(doc, "security_group_rules"); len(got) != 1 || got[0] != rule["id"] {
		t.Errorf("rules of %s: %v", sg, doc)
	}
	e.vpcs.Read(func(st *vpc.State) {
		if d := translate.Translate(st, translate.CloudConfig{}); len(d.Skipped) > 0 {
			t.Errorf("skipped with the rule: %v", d.Skipped)
		}
	})
	p.must(204, "DELETE", "/v2.0/security-group-rules/"+rule["id"].(string), nil, "")
	p.must(404, "GET", "/v2.0/security-group-rules/"+rule["id"].(string), nil, "")

	// Update, and deletes in dependency order.
	p.must(200, "PUT", "/v2.0/networks/"+netID, map[string]any{"network": map[string]any{"name": "renamed"}}, "network")
	if n := p.must(200, "GET", "/v2.0/networks/"+netID, nil, "network"); n["name"] != "renamed" {
		t.Errorf("renamed: %v", n)
	}
	p.must(409, "DELETE", "/v2.0/networks/"+netID, nil, "")
	p.must(409, "DELETE", "/v2.0/subnets/"+sub["id"].(string), nil, "")
	for _, id := range append(first, second...) {
		p.must(204, "DELETE", "/v2.0/ports/"+id, nil, "")
	}
	p.must(204, "DELETE", "/v2.0/networks/"+netID, nil, "")
	p.must(404, "GET", "/v2.0/subnets/"+sub["id"].(string), nil, "")
}

func must(b []byte, _ error) string { return string(b) }
