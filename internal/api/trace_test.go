package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// A subnet (bridge) behind a router, a web instance whose port only accepts
// TCP 80: trace an accepted and a dropped packet and check the verdicts and
// the steps that decided them.
func TestTrace(t *testing.T) {
	e := newEnv(t)
	var chain, br, rt, vm1, vm2, gw, bgw map[string]any
	e.do("POST", "/chains", map[string]any{"name": "sg-web-ingress", "rules": []any{
		map[string]any{"nw_proto": 6, "tp_dst": map[string]any{"start": 80, "end": 80}, "action": "accept"},
		map[string]any{"ether_type": 0x0800, "action": "drop"},
	}}, 201, &chain)
	e.do("POST", "/bridges", map[string]any{"name": "subnet-a"}, 201, &br)
	e.do("POST", "/routers", map[string]any{"name": "vpc"}, 201, &rt)
	e.do("POST", "/routers/"+rt["id"].(string)+"/ports", map[string]any{"name": "gw", "mac": "02:00:00:00:ff:01", "address": "10.0.0.1/24"}, 201, &gw)
	e.do("POST", "/bridges/"+br["id"].(string)+"/ports", map[string]any{"name": "to-router"}, 201, &bgw)
	e.do("POST", "/ports/"+bgw["id"].(string)+"/link", map[string]any{"peer_id": gw["id"]}, 200, nil)
	var h map[string]any
	e.do("POST", "/hosts", map[string]any{"name": "h1"}, 201, &h)
	e.do("POST", "/bridges/"+br["id"].(string)+"/ports", map[string]any{"name": "eni-client", "mac": "02:00:00:00:00:11", "ips": []string{"10.0.0.11"}, "host_id": h["id"], "interface": "tap1"}, 201, &vm1)
	e.do("POST", "/bridges/"+br["id"].(string)+"/ports", map[string]any{"name": "eni-web", "mac": "02:00:00:00:00:12", "ips": []string{"10.0.0.12"}, "host_id": h["id"], "interface": "tap2", "out_filter": chain["id"]}, 201, &vm2)

	var ok TraceResult
	e.do("POST", "/trace", map[string]any{"port": "eni-client", "proto": "tcp", "src": "10.0.0.11", "dst": "10.0.0.12", "dst_port": 80}, 200, &ok)
	if ok.Verdict != "forward" || len(ok.Outputs) != 1 || ok.Outputs[0].PortID != vm2["id"] {
		t.Fatalf("tcp/80: verdict %s outputs %+v\n%s", ok.Verdict, ok.Outputs, ok.Text)
	}
	if !hasStep(ok, "rule", "sg-web-ingress", 1) {
		t.Errorf("tcp/80: no step for rule #1 of sg-web-ingress:\n%s", ok.Text)
	}

	var drop TraceResult
	e.do("POST", "/trace", map[string]any{"port": vm1["id"], "proto": "tcp", "src": "10.0.0.11", "dst": "10.0.0.12", "dst_port": 22}, 200, &drop)
	if drop.Verdict != "drop" || len(drop.Outputs) != 0 {
		t.Fatalf("tcp/22: verdict %s outputs %+v\n%s", drop.Verdict, drop.Outputs, drop.Text)
	}
	if !hasStep(drop, "rule", "sg-web-ingress", 2) {
		t.Errorf("tcp/22: no step for the drop rule #2:\n%s", drop.Text)
	}

	// Off the subnet: routed to the gateway, which has no route out.
	var routed TraceResult
	e.do("POST", "/trace", map[string]any{"port": "eni-client", "proto": "icmp", "src": "10.0.0.11", "dst": "192.0.2.9"}, 200, &routed)
	if !strings.Contains(routed.Text, "vpc") {
		t.Errorf("routed packet never met the router:\n%s", routed.Text)
	}

	t.Logf("accepted:\n%s\ndropped:\n%s\nrouted:\n%s", ok.Text, drop.Text, routed.Text)
	for _, bad := range []struct{ body, field string }{
		{`{"port":"nope","src":"10.0.0.11","dst":"10.0.0.12"}`, "port"},
		{`{"port":"eni-client","proto":"sctp","src":"10.0.0.11","dst":"10.0.0.12"}`, "proto"},
		{`{"port":"eni-client","proto":"tcp","src":"10.0.0.11","dst":"10.0.0.12"}`, "dst_port"},
		{`{"port":"eni-client","dst":"10.0.0.12"}`, "src"},
	} {
		code, b := e.raw("POST", "/trace", bad.body, nil)
		var er struct{ Error struct{ Field string } }
		_ = json.Unmarshal(b, &er)
		if code != 400 || er.Error.Field != bad.field {
			t.Errorf("%s: got %d %s, want 400 on field %s", bad.body, code, b, bad.field)
		}
	}
}

func hasStep(r TraceResult, kind, name string, index int) bool {
	for _, s := range r.Steps {
		if string(s.Kind) == kind && strings.Contains(s.Name, name) && s.Index == index {
			return true
		}
	}
	return false
}

// The trace uses the learned MAC entries the agents share: a frame to a MAC
// nobody learned floods, and once a host has published the MAC behind a
// port it goes there alone, the step saying it was learned.
func TestTraceUsesLearnedEntries(t *testing.T) {
	e := newEnv(t)
	var br, h, pa, pb, pc map[string]any
	e.do("POST", "/bridges", map[string]any{"name": "l2"}, 201, &br)
	e.do("POST", "/hosts", map[string]any{"name": "h1"}, 201, &h)
	for i, p := range []*map[string]any{&pa, &pb, &pc} {
		e.do("POST", "/bridges/"+br["id"].(string)+"/ports", map[string]any{"name": "ext" + string(rune('a'+i)), "host_id": h["id"], "interface": "eth" + string(rune('a'+i))}, 201, p)
	}
	req := map[string]any{"port": "exta", "proto": "udp", "src": "10.0.0.1", "dst": "10.0.0.2", "dst_port": 53,
		"src_mac": "02:00:00:00:00:0a", "dst_mac": "02:00:00:00:00:0b"}
	var flood TraceResult
	e.do("POST", "/trace", req, 200, &flood)
	if len(flood.Outputs) != 2 {
		t.Fatalf("unknown MAC: outputs %+v\n%s", flood.Outputs, flood.Text)
	}
	if _, err := e.store.PutLearned(t.Context(), nsdb.LearnedEntry{Host: h["id"].(string), Kind: topology.KindBridge,
		Device: br["id"].(string), Key: "02:00:00:00:00:0b", Value: pb["id"].(string)}, nil); err != nil {
		t.Fatal(err)
	}
	var uni TraceResult
	e.do("POST", "/trace", req, 200, &uni)
	if len(uni.Outputs) != 1 || uni.Outputs[0].PortID != pb["id"] || !strings.Contains(uni.Text, "(learned)") {
		t.Fatalf("learned MAC: outputs %+v\n%s", uni.Outputs, uni.Text)
	}
}
