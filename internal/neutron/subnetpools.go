package neutron

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func subnetPoolNotFound(id string) *Error { return notFound("SubnetPoolNotFound", "Subnet pool", id) }

// Subnet pools (subnet_allocation): a project's prefixes its subnets take
// blocks from. Canopy keeps them as objects of their own, which translate
// to nothing; a subnet made from one records it (subnetpool_id).
func (s *Server) subnetPools() *resource {
	return &resource{
		collection: "subnetpools", member: "subnetpool", notFound: subnetPoolNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			err := c.read(func(st *vpc.State) error {
				for _, p := range st.SubnetPools {
					if c.sees(p.OwnerID) {
						out = append(out, renderSubnetPool(p))
					}
				}
				return nil
			})
			slices.SortFunc(out, func(a, b obj) int { return compareStr(a["id"], b["id"]) })
			return out, err
		},
		create: s.createSubnetPool,
		update: s.updateSubnetPool,
		del:    s.deleteSubnetPool,
	}
}

func compareStr(a, b any) int {
	x, y := a.(string), b.(string)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func renderSubnetPool(p *vpc.SubnetPool) obj {
	prefixes := []string{}
	for _, x := range p.Prefixes {
		prefixes = append(prefixes, x.String())
	}
	return obj{
		"id": p.ID, "name": nameOf(p.Tags), "description": p.Tags[tagDescription],
		"tenant_id": p.OwnerID, "project_id": p.OwnerID, "prefixes": prefixes, "ip_version": 4,
		"default_prefixlen": p.DefaultPrefixLen, "min_prefixlen": p.MinPrefixLen, "max_prefixlen": p.MaxPrefixLen,
		"shared": false, "is_default": false, "address_scope_id": nil, "default_quota": nil,
		"tags": neutronTags(p.Tags),
	}
}

// poolAttrs applies prefixes and the prefix lengths to p (a new pool when
// create), checking them as Neutron does.
func poolAttrs(a attrs, p *vpc.SubnetPool, create bool) error {
	if raw, ok := a["prefixes"]; ok {
		var in []string
		if err := json.Unmarshal(raw, &in); err != nil || len(in) == 0 {
			return badRequest("Invalid input for prefixes. Reason: '%s' is not a non-empty list of CIDRs.", raw)
		}
		var ps []netip.Prefix
		for _, x := range in {
			pf, err := netip.ParsePrefix(x)
			if err != nil || !pf.Addr().Is4() {
				return badRequest("Invalid input for prefixes. Reason: '%s' is not a valid IPv4 CIDR.", x)
			}
			ps = append(ps, pf.Masked())
		}
		// Overlapping prefixes merge, as Neutron compacts them.
		slices.SortFunc(ps, func(x, y netip.Prefix) int {
			if c := x.Bits() - y.Bits(); c != 0 {
				return c
			}
			return x.Addr().Compare(y.Addr())
		})
		var merged []netip.Prefix
		for _, x := range ps {
			if !slices.ContainsFunc(merged, func(m netip.Prefix) bool { return m.Contains(x.Addr()) }) {
				merged = append(merged, x)
			}
		}
		// A pool only grows: every old prefix stays covered.
		for _, old := range p.Prefixes {
			if !slices.ContainsFunc(merged, func(m netip.Prefix) bool { return m.Contains(old.Addr()) && m.Bits() <= old.Bits() }) {
				return badRequest("Illegal update to prefixes: Existing prefix %s is not a subset of the new prefixes (a subnet pool only grows).", old)
			}
		}
		p.Prefixes = merged
	} else if create {
		return badRequest("Failed to parse request. Required attribute 'prefixes' not specified")
	}
	for _, f := range []struct {
		k   string
		dst *int
	}{{"min_prefixlen", &p.MinPrefixLen}, {"max_prefixlen", &p.MaxPrefixLen}, {"default_prefixlen", &p.DefaultPrefixLen}} {
		raw, ok := a[f.k]
		if !ok {
			continue
		}
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			var s string
			if json.Unmarshal(raw, &s) != nil || json.Unmarshal([]byte(s), &n) != nil {
				return badRequest("Invalid input for %s. Reason: '%s' is not an integer.", f.k, raw)
			}
		}
		if n < 0 || n > 32 {
			return badRequest("Invalid input for %s. Reason: '%d' is not in range 0 through 32.", f.k, n)
		}
		*f.dst = n
	}
	if create {
		if !a.has("min_prefixlen") {
			p.MinPrefixLen = minSubnetBits
		}
		if !a.has("max_prefixlen") {
			p.MaxPrefixLen = maxSubnetBits
		}
		if !a.has("default_prefixlen") {
			p.DefaultPrefixLen = p.MinPrefixLen
		}
	}
	if p.MinPrefixLen < minSubnetBits || p.MaxPrefixLen > maxSubnetBits {
		return invalidInput("a subnet on Canopy is a /%d to a /%d: min_prefixlen and max_prefixlen must be within", minSubnetBits, maxSubnetBits)
	}
	if !(p.MinPrefixLen <= p.DefaultPrefixLen && p.DefaultPrefixLen <= p.MaxPrefixLen) {
		return &Error{http.StatusBadRequest, "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: min_prefixlen=" + itoa(p.MinPrefixLen) + ", default_prefixlen=" + itoa(p.DefaultPrefixLen) + ", max_prefixlen=" + itoa(p.MaxPrefixLen) + "."}
	}
	return nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (s *Server) createSubnetPool(c *call, a attrs) (string, error) {
	if err := a.only("name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen",
		"shared", "is_default", "address_scope_id", "default_quota", "tenant_id", "project_id"); err != nil {
		return "", err
	}
	name, desc, err := a.nameDesc()
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		k    string
		want any
		why  string
	}{
		{"shared", false, "shared subnet pools are not supported"},
		{"is_default", false, "default subnet pools are not supported"},
		{"address_scope_id", nil, "address scopes are not supported"},
		{"default_quota", nil, "subnet pool quotas are not supported"},
	} {
		if err := a.fixed(f.k, f.want, f.why); err != nil {
			return "", err
		}
	}
	p := &vpc.SubnetPool{}
	if err := poolAttrs(a, p, true); err != nil {
		return "", err
	}
	var id string
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		owner, err := c.owner(a, func(p string) bool { return st.Accounts[p] != nil })
		if err != nil {
			return err
		}
		p := clone(p)
		p.ID, p.OwnerID, p.Tags = ec2.NewID(vpc.KindSubnetPool), owner, withText(nil, name, desc)
		id = p.ID
		return tx.Put(p.ID, p)
	})
	return id, err
}

// subnetPool returns a pool the caller sees.
func (c *call) subnetPool(st *vpc.State, id string) (*vpc.SubnetPool, error) {
	p := st.SubnetPools[id]
	if p == nil || !c.sees(p.OwnerID) {
		return nil, subnetPoolNotFound(id)
	}
	return p, nil
}

func (s *Server) updateSubnetPool(c *call, id string, a attrs) error {
	if err := a.only("name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen"); err != nil {
		return err
	}
	name, desc, err := a.nameDesc()
	if err != nil {
		return err
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		p, err := c.subnetPool(st, id)
		if err != nil {
			return err
		}
		p = clone(p)
		if err := poolAttrs(a, p, false); err != nil {
			return err
		}
		if !a.has("name") {
			name = nameOf(p.Tags)
		}
		if !a.has("description") {
			desc = p.Tags[tagDescription]
		}
		p.Tags = withText(p.Tags, name, desc)
		return tx.Put(p.ID, p)
	})
}

func (s *Server) deleteSubnetPool(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if _, err := c.subnetPool(st, id); err != nil {
			return err
		}
		for _, sub := range st.Subnets {
			if sub.SubnetPoolID == id {
				return conflict("SubnetPoolInUse", "Unable to complete operation on subnet pool %s: subnet %s was allocated from it.", id, sub.ID)
			}
		}
		return tx.Delete("subnet_pools", id)
	})
}

// fromPool picks a new subnet's block from pool p: cidr when given (inside
// one of its prefixes, at an allowed length), else the lowest free block of
// prefixlen (default_prefixlen when 0) that overlaps no subnet of the
// network nor one allocated from the pool.
func fromPool(st *vpc.State, p *vpc.SubnetPool, netID string, cidr netip.Prefix, prefixlen int) (netip.Prefix, error) {
	taken := func(x netip.Prefix) bool {
		for _, sub := range st.Subnets {
			if (sub.VpcID == netID || sub.SubnetPoolID == p.ID) && sub.CidrBlock.Overlaps(x) {
				return true
			}
		}
		return false
	}
	if cidr.IsValid() {
		if !slices.ContainsFunc(p.Prefixes, func(m netip.Prefix) bool { return m.Contains(cidr.Addr()) && m.Bits() <= cidr.Bits() }) {
			return netip.Prefix{}, badRequest("Invalid input for cidr. Reason: %s is not within subnet pool %s's prefixes.", cidr, p.ID)
		}
		if cidr.Bits() < p.MinPrefixLen || cidr.Bits() > p.MaxPrefixLen {
			return netip.Prefix{}, badRequest("Invalid input for cidr. Reason: /%d is outside subnet pool %s's prefix lengths (/%d to /%d).", cidr.Bits(), p.ID, p.MinPrefixLen, p.MaxPrefixLen)
		}
		if taken(cidr) {
			return netip.Prefix{}, invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", cidr, netID)
		}
		return cidr, nil
	}
	if prefixlen == 0 {
		prefixlen = p.DefaultPrefixLen
	}
	if prefixlen < p.MinPrefixLen || prefixlen > p.MaxPrefixLen {
		return netip.Prefix{}, badRequest("Invalid input for prefixlen. Reason: /%d is outside subnet pool %s's prefix lengths (/%d to /%d).", prefixlen, p.ID, p.MinPrefixLen, p.MaxPrefixLen)
	}
	for _, m := range p.Prefixes {
		if m.Bits() > prefixlen {
			continue
		}
		n := 1 << (prefixlen - m.Bits())
		step := 1 << (32 - prefixlen)
		for i := 0; i < n; i++ {
			x := netip.PrefixFrom(vpc.Nth(m, i*step), prefixlen)
			if !taken(x) {
				return x, nil
			}
		}
	}
	return netip.Prefix{}, conflict("SubnetAllocationError", "Failed to allocate subnet: no /%d is free in subnet pool %s.", prefixlen, p.ID)
}
