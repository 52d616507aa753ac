package vpc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// The indexed lookups answer what the scans answer, through random puts,
// moves and deletes reported with Changed.
func TestIndexedLookupsMatchScans(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ix, scan := NewState(), NewState()
	ix.Reindex()
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s-%d", prefix, rng.IntN(n)) }
	for step := range 3000 {
		id := pick("obj", 60)
		var old, obj any
		owner := pick("acct", 3)
		switch rng.IntN(5) {
		case 0:
			e := &NetworkInterface{ID: id, OwnerID: owner, VpcID: pick("vpc", 4), SubnetID: pick("subnet", 6), Groups: []string{pick("sg", 5)}}
			if rng.IntN(2) == 0 {
				e.Attachment = &ENIAttachment{InstanceID: pick("i", 8), DeviceIndex: rng.IntN(2)}
			}
			if o, ok := ix.NetworkInterfaces[id]; ok {
				old = o
			}
			obj = e
			if rng.IntN(3) == 0 {
				obj = nil
				delete(ix.NetworkInterfaces, id)
				delete(scan.NetworkInterfaces, id)
			} else {
				ix.NetworkInterfaces[id], scan.NetworkInterfaces[id] = e, e
			}
		case 1:
			a := &Address{AllocationID: id, OwnerID: owner, NetworkInterfaceID: pick("obj", 60), PublicIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(10))})}
			if o, ok := ix.Addresses[id]; ok {
				old = o
			}
			obj = a
			ix.Addresses[id], scan.Addresses[id] = a, a
		case 2:
			s := &Subnet{ID: id, OwnerID: owner, VpcID: pick("vpc", 4)}
			if o, ok := ix.Subnets[id]; ok {
				old = o
			}
			obj = s
			ix.Subnets[id], scan.Subnets[id] = s, s
		case 3:
			g := &InternetGateway{ID: id, OwnerID: owner, Attachments: []IGWAttachment{{VpcID: pick("vpc", 4), State: StateAvailable}}}
			if o, ok := ix.InternetGateways[id]; ok {
				old = o
			}
			obj = g
			ix.InternetGateways[id], scan.InternetGateways[id] = g, g
		case 4:
			i := &Instance{ID: id, OwnerID: owner}
			if o, ok := ix.Instances[id]; ok {
				old = o
			}
			obj = i
			if rng.IntN(3) == 0 {
				obj = nil
				delete(ix.Instances, id)
				delete(scan.Instances, id)
			} else {
				ix.Instances[id], scan.Instances[id] = i, i
			}
		}
		ix.Changed(id, old, obj)
		if step%50 != 0 {
			continue
		}
		for v := range 4 {
			vpc := fmt.Sprintf("vpc-%d", v)
			if !slices.Equal(ix.SubnetsOf(vpc), scan.SubnetsOf(vpc)) || !slices.Equal(ix.InterfacesOf(vpc), scan.InterfacesOf(vpc)) ||
				ix.InternetGatewayOf(vpc) != scan.InternetGatewayOf(vpc) {
				t.Fatalf("step %d: lookups of %s differ", step, vpc)
			}
		}
		for n := range 8 {
			k := fmt.Sprintf("i-%d", n)
			if ix.PrimaryInterface(k) != scan.PrimaryInterface(k) {
				t.Fatalf("step %d: primary interface of %s differs", step, k)
			}
		}
		for n := range 6 {
			k := fmt.Sprintf("subnet-%d", n)
			if !slices.Equal(ix.InterfacesInSubnet(k), scan.InterfacesInSubnet(k)) {
				t.Fatalf("step %d: interfaces in %s differ", step, k)
			}
		}
		for n := range 5 {
			k := fmt.Sprintf("sg-%d", n)
			if !slices.Equal(ix.GroupMembers(k), scan.GroupMembers(k)) {
				t.Fatalf("step %d: members of %s differ", step, k)
			}
		}
		for n := range 3 {
			k := fmt.Sprintf("acct-%d", n)
			if !slices.Equal(ix.OwnedInterfaces(k), scan.OwnedInterfaces(k)) || !slices.Equal(ix.OwnedAddresses(k), scan.OwnedAddresses(k)) ||
				!slices.Equal(ix.OwnedSubnets(k), scan.OwnedSubnets(k)) || !slices.Equal(ix.OwnedInternetGateways(k), scan.OwnedInternetGateways(k)) ||
				!slices.Equal(ix.OwnedInstances(k), scan.OwnedInstances(k)) {
				t.Fatalf("step %d: objects of %s differ", step, k)
			}
		}
		for n := range 10 {
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(n)})
			if ix.AddressWithIP(ip) != scan.AddressWithIP(ip) {
				t.Fatalf("step %d: address with %s differs", step, ip)
			}
		}
		for n := range 60 {
			k := fmt.Sprintf("obj-%d", n)
			if !slices.Equal(ix.AddressesOfInterface(k), scan.AddressesOfInterface(k)) {
				t.Fatalf("step %d: addresses of %s differ", step, k)
			}
		}
	}
}
