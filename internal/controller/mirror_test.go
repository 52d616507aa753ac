package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// partitionJSON is a VPC's translation as comparable bytes.
func partitionJSON(t *testing.T, st *vpc.State, vpcID string) []byte {
	t.Helper()
	b, err := json.Marshal(translate.TranslateVPC(st, testCloud(), vpcID))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutations are changes a tenant makes, including those that cross VPCs:
// an address moving to another VPC's interface, a shared DHCP option set,
// an instance moving host, an internet gateway re-attached elsewhere, a
// group referenced from another VPC, a router joining VPCs whose blocks
// move.
func mutations(r *rand.Rand, m *mirror) []vpcChange {
	n := 1 + r.IntN(4)
	other := fmt.Sprintf("vpc-%017d", 1+r.IntN(4))
	fx := fixture(n)
	pick := func(coll string) (string, any) {
		for _, o := range fx {
			if c, id := collOf(o); c == coll {
				if cur := m.get(coll, id); cur != nil {
					return id, cur
				}
				return id, o
			}
		}
		panic(coll)
	}
	switch r.IntN(11) {
	case 0: // move the address to another VPC's interface
		id, o := pick(collAddresses)
		a := clone(o.(*vpc.Address))
		a.NetworkInterfaceID = fmt.Sprintf("eni-%017d", 1+r.IntN(4))
		return []vpcChange{{collAddresses, id, a}}
	case 1: // a DHCP option set shared by VPCs changes
		d := &vpc.DhcpOptions{ID: "dopt-shared", OwnerID: acct, Config: map[string][]string{vpc.DhcpDomainName: {fmt.Sprintf("d%d.internal", r.IntN(100))}}}
		return []vpcChange{{collDHCP, d.ID, d}}
	case 2: // a VPC switches to the shared set
		_, o := pick(collVpcs)
		x := clone(o.(*vpc.Vpc))
		x.DhcpOptionsID = "dopt-shared"
		return []vpcChange{{collVpcs, x.ID, x}}
	case 3: // the instance moves or stops
		id, o := pick(collInstances)
		i := clone(o.(*vpc.Instance))
		i.HostID = []string{"", vmHost, gwHost}[r.IntN(3)]
		return []vpcChange{{collInstances, id, i}}
	case 4: // the internet gateway is re-attached to another VPC
		id, o := pick(collIGWs)
		g := clone(o.(*vpc.InternetGateway))
		g.Attachments = []vpc.IGWAttachment{{VpcID: other, State: vpc.StateAvailable}}
		return []vpcChange{{collIGWs, id, g}}
	case 5: // a rule references another VPC's group (or one that does not exist)
		id, o := pick(collSGs)
		g := clone(o.(*vpc.SecurityGroup))
		ref := fmt.Sprintf("sg-d%016d", 1+r.IntN(5))
		g.Ingress = append(g.Ingress, vpc.SecurityGroupRule{ID: fmt.Sprintf("sgr-x%d", r.IntN(1000)), IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: ref})
		return []vpcChange{{collSGs, id, g}}
	case 6: // a referenced group comes or goes
		// (in its own VPC: an interface's groups are in the interface's
		// VPC, as AWS requires)
		k := 1 + r.IntN(5)
		id := fmt.Sprintf("sg-d%016d", k)
		if m.get(collSGs, id) != nil {
			return []vpcChange{{collSGs, id, nil}}
		}
		return []vpcChange{{collSGs, id, &vpc.SecurityGroup{ID: id, OwnerID: acct, VpcID: fmt.Sprintf("vpc-%017d", k), GroupName: "back"}}}
	case 9: // a router joins VPCs (a Neutron router on several networks), or is set down
		g := &vpc.InternetGateway{ID: "igw-join", OwnerID: acct, Down: r.IntN(4) == 0}
		for k := 1; k <= 4; k++ {
			if r.IntN(2) == 0 {
				g.Joins = append(g.Joins, fmt.Sprintf("vpc-%017d", k))
			}
		}
		return []vpcChange{{collIGWs, g.ID, g}}
	case 10: // a VPC's block moves (overlapping another's, or not)
		_, o := pick(collVpcs)
		x := clone(o.(*vpc.Vpc))
		x.CidrBlock = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), 0, 0}), 16)
		return []vpcChange{{collVpcs, x.ID, x}}
	case 7: // a subnet goes
		return []vpcChange{{collSubnets, fmt.Sprintf("subnet-%d%016d", 1+r.IntN(2), n), nil}}
	default: // the interface leaves its groups
		id, o := pick(collENIs)
		e := clone(o.(*vpc.NetworkInterface))
		e.Groups = e.Groups[:r.IntN(len(e.Groups)+1)]
		return []vpcChange{{collENIs, id, e}}
	}
}

// TestMirrorDirty is a differential test of the incremental path against
// full translation: after random changes, (1) each VPC translated from its
// sub-state equals its translation from the whole state, and (2) every VPC
// whose translation changed was marked dirty.
func TestMirrorDirty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := newMirror()
	for n := 1; n <= 4; n++ {
		for _, o := range fixture(n) {
			coll, id := collOf(o)
			m.apply(vpcChange{coll, id, o}, idset{})
		}
	}
	vpcs := []string{}
	for n := 1; n <= 4; n++ {
		vpcs = append(vpcs, fmt.Sprintf("vpc-%017d", n))
	}
	before := map[string][]byte{}
	for _, v := range vpcs {
		m.subState(v) // records what each VPC reads
		before[v] = partitionJSON(t, m.st, v)
	}
	for step := range 400 {
		dirty := idset{}
		for _, ch := range mutations(r, m) {
			m.apply(ch, dirty)
		}
		for _, v := range vpcs {
			full := partitionJSON(t, m.st, v)
			if _, ok := dirty[v]; !ok && !bytes.Equal(full, before[v]) {
				t.Fatalf("step %d: %s's translation changed but it was not dirtied", step, v)
			}
			if _, ok := dirty[v]; ok {
				sub := partitionJSON(t, m.subState(v), v)
				if !bytes.Equal(sub, full) {
					t.Fatalf("step %d: %s from its sub-state differs from the full translation:\nsub  %s\nfull %s", step, v, sub, full)
				}
			}
			before[v] = full
		}
	}
}
