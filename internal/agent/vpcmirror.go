package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/canopy-sdn/canopy/internal/metadata"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// vpcMirror is the agent's read-only copy of the VPC objects (vpc/ in the
// store), for the metadata service: the instance behind a port, its
// interfaces, subnet, VPC, groups and addresses. Objects are replaced on
// change, never mutated, so what a reader took out under the lock stays
// valid after it.
type vpcMirror struct {
	mu sync.RWMutex
	st *vpc.State
	// partOf is the partition each object ("<collection>/<id>") came from,
	// when the mirror follows partitions (Config.Replica partial).
	partOf map[string]string
	log    func(string, ...any)
}

func newVPCMirror() *vpcMirror {
	st := vpc.NewState()
	st.Reindex() // every change goes through nsdb.ApplyVPCKV/ApplyVPCEvents
	return &vpcMirror{st: st, partOf: map[string]string{}, log: func(string, ...any) {}}
}

func (m *vpcMirror) followPartition(ctx context.Context, store *nsdb.Store, part string) {
	_ = store.WatchVPCPartition(ctx, part, nsdb.Handler{
		Reset: func(kvs []nsdb.KV, _ int64) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.dropLocked(part)
			for _, kv := range kvs {
				m.applyLocked(part, kv, false)
			}
		},
		Events: func(evs []nsdb.Event, _ int64) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, e := range evs {
				m.applyLocked(part, e.KV, e.Delete)
			}
		},
	})
}

// applyLocked applies one key of partition part; m.mu is held. A late
// delete from a partition the object has left is ignored.
func (m *vpcMirror) applyLocked(part string, kv nsdb.KV, del bool) {
	rel := nsdb.VPCRel(kv.Key)
	if del && m.partOf[rel] != part {
		return
	}
	if err := nsdb.ApplyVPCKV(m.st, rel, kv.Value, del); err != nil {
		m.log("agent: undecodable VPC change skipped", "err", err)
		return
	}
	if del {
		delete(m.partOf, rel)
	} else {
		m.partOf[rel] = part
	}
}

func (m *vpcMirror) dropPartition(part string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropLocked(part)
}

func (m *vpcMirror) dropLocked(part string) {
	for rel, p := range m.partOf {
		if p == part {
			_ = nsdb.ApplyVPCKV(m.st, rel, nil, true)
			delete(m.partOf, rel)
		}
	}
}

func (m *vpcMirror) handler(prefix string, log func(string, ...any)) nsdb.Handler {
	return nsdb.Handler{
		Reset: func(kvs []nsdb.KV, _ int64) {
			st, err := nsdb.DecodeVPCState(prefix, kvs)
			if err != nil {
				log("agent: undecodable VPC objects skipped", "err", err)
			}
			st.Reindex()
			m.mu.Lock()
			m.st = st
			m.mu.Unlock()
		},
		Events: func(evs []nsdb.Event, _ int64) {
			m.mu.Lock()
			err := nsdb.ApplyVPCEvents(prefix, m.st, evs)
			m.mu.Unlock()
			if err != nil {
				log("agent: undecodable VPC change skipped", "err", err)
			}
		},
	}
}

// runVPCMirror follows vpc/ until ctx is done.
func (a *Agent) runVPCMirror(ctx context.Context) {
	_ = a.store.WatchVPCObjects(ctx, a.vpcs.handler(a.store.Prefix(), a.log.Warn))
}

// instance builds what the metadata service tells the instance owning
// the ENI eniID about itself. domain is the DHCP domain of the ENI's
// subnet (for the host name). False: the ENI is not attached to a known
// instance.
func (m *vpcMirror) instance(eniID, domain string) (*metadata.Instance, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := m.st
	eni := st.NetworkInterfaces[eniID]
	if eni == nil || eni.Attachment == nil || eni.Attachment.InstanceID == "" {
		return nil, false
	}
	vi := st.Instances[eni.Attachment.InstanceID]
	// An instance that turned its metadata endpoint off gets nothing.
	if vi == nil || vi.MetadataOptions.HttpEndpoint == "disabled" {
		return nil, false
	}
	in := &metadata.Instance{ID: vi.ID, AccountID: vi.OwnerID}
	fillInstance(in, vi)
	// Every ENI attached to the instance, in device order.
	var enis []*vpc.NetworkInterface
	for _, e := range st.NetworkInterfaces {
		if e.Attachment != nil && e.Attachment.InstanceID == vi.ID {
			enis = append(enis, e)
		}
	}
	slices.SortFunc(enis, func(x, y *vpc.NetworkInterface) int { return x.Attachment.DeviceIndex - y.Attachment.DeviceIndex })
	for _, e := range enis {
		in.Interfaces = append(in.Interfaces, interfaceOf(st, e))
		if e.Attachment.DeviceIndex == 0 {
			if sub := st.Subnets[e.SubnetID]; sub != nil && in.Zone == "" {
				in.Zone = sub.AvailabilityZone
			}
			if ip := e.PrimaryIP(); ip.Is4() {
				in.Hostname = hostname(ip, domain)
			}
		}
	}
	if in.Region == "" {
		in.Region = regionOf(in.Zone)
	}
	return in, true
}

// interfaceOf is one ENI as metadata shows it.
func interfaceOf(st *vpc.State, e *vpc.NetworkInterface) metadata.Interface {
	nic := metadata.Interface{MAC: strings.ToLower(e.MacAddress), DeviceNumber: e.Attachment.DeviceIndex, ID: e.ID,
		SubnetID: e.SubnetID, VPCID: e.VpcID}
	if sub := st.Subnets[e.SubnetID]; sub != nil {
		nic.SubnetCIDR = sub.CidrBlock
	}
	if v := st.Vpcs[e.VpcID]; v != nil {
		nic.VPCCIDRs = []netip.Prefix{v.CidrBlock}
	}
	if p := e.PrimaryIP(); p.IsValid() {
		nic.PrivateIPs = append(nic.PrivateIPs, p)
	}
	for _, p := range e.PrivateIPs {
		if p.Address != e.PrimaryIP() {
			nic.PrivateIPs = append(nic.PrivateIPs, p.Address)
		}
	}
	for _, ad := range st.Addresses {
		if ad.NetworkInterfaceID == e.ID && ad.PublicIP.IsValid() {
			priv := ad.PrivateIPAddress
			if !priv.IsValid() {
				priv = e.PrimaryIP()
			}
			nic.Associations = append(nic.Associations, metadata.Association{Public: ad.PublicIP, Private: priv})
		}
	}
	slices.SortFunc(nic.Associations, func(x, y metadata.Association) int { return x.Private.Compare(y.Private) })
	for _, g := range e.Groups {
		sg := metadata.SecurityGroup{ID: g}
		if o := st.SecurityGroups[g]; o != nil {
			sg.Name = o.GroupName
		}
		nic.SecurityGroups = append(nic.SecurityGroups, sg)
	}
	return nic
}

// hostname is EC2's private DNS name: ip-10-0-1-5.<domain>.
func hostname(ip netip.Addr, domain string) string {
	b := ip.As4()
	h := fmt.Sprintf("ip-%d-%d-%d-%d", b[0], b[1], b[2], b[3])
	// The first name of a DHCP domain list ("ec2.internal corp.example").
	if f := strings.Fields(domain); len(f) > 0 {
		if d := strings.TrimSuffix(f[0], "."); d != "" {
			h += "." + d
		}
	}
	return h
}

// regionOf derives the region from an availability zone (us-east-1a →
// us-east-1).
func regionOf(zone string) string {
	if n := len(zone); n > 1 && zone[n-1] >= 'a' && zone[n-1] <= 'z' && zone[n-2] >= '0' && zone[n-2] <= '9' {
		return zone[:n-1]
	}
	return zone
}
