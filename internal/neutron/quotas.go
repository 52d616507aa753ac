package neutron

import (
	"maps"
	"net/http"
	"slices"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Quotas are Neutron's defaults, the same for every project and fixed
// (PUT answers 400): a create past one answers 409 OverQuota. Where the
// EC2 side has a lower limit (elastic IPs per account, VPCs per account),
// that one refuses first.
var quotas = map[string]int{
	"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
	"security_group": 10, "security_group_rule": 100,
}

// usage counts what a project holds of each quota's resource.
func usage(st *vpc.State, owner string) map[string]int {
	u := map[string]int{}
	for _, v := range st.Vpcs {
		if v.OwnerID == owner {
			u["network"]++
		}
	}
	for _, s := range st.Subnets {
		if s.OwnerID == owner {
			u["subnet"]++
		}
	}
	for _, e := range st.NetworkInterfaces {
		if e.OwnerID == owner && e.InterfaceType == vpc.InterfaceTypeInterface {
			u["port"]++
		}
	}
	for _, g := range st.InternetGateways {
		if g.OwnerID == owner && isRouter(g) {
			u["router"]++
		}
	}
	for _, a := range st.Addresses {
		if a.OwnerID == owner && !a.AutoAssigned && a.Tags[tagGatewayOf] == "" {
			u["floatingip"]++
		}
	}
	for _, g := range st.SecurityGroups {
		if g.OwnerID == owner && projectGroup(g) {
			u["security_group"]++
			u["security_group_rule"] += len(g.Ingress) + len(g.Egress)
		}
	}
	return u
}

// checkQuota refuses one more of resource for owner past its quota.
func checkQuota(st *vpc.State, owner, resource string) error {
	if usage(st, owner)[resource] >= quotas[resource] {
		return conflict("OverQuota", "Quota exceeded for resources: ['%s'].", resource)
	}
	return nil
}

func quotaDoc() obj {
	o := obj{}
	for k, v := range quotas {
		o[k] = v
	}
	return o
}

// quotaProject resolves {project_id} of a quota URL: a member asks about
// its own project, admin about any.
func (c *call) quotaProject() (string, error) {
	p := c.r.PathValue("project")
	if p != c.project() && !c.admin {
		return "", forbidden("A member may only see its own project's quotas.")
	}
	var ok bool
	_ = c.read(func(st *vpc.State) error { ok = st.Accounts[p] != nil; return nil })
	if !ok {
		return "", notFound("HTTPNotFound", "Project", p)
	}
	return p, nil
}

func (s *Server) routeQuotas() {
	s.mux.HandleFunc("GET /v2.0/quotas", s.authed(func(c *call, w http.ResponseWriter) {
		// Only projects with quotas of their own are listed: none.
		writeJSON(w, http.StatusOK, obj{"quotas": []obj{}})
	}))
	show := func(c *call, w http.ResponseWriter) {
		if _, err := c.quotaProject(); err != nil {
			writeError(w, toError(err))
			return
		}
		writeJSON(w, http.StatusOK, obj{"quota": quotaDoc()})
	}
	s.mux.HandleFunc("GET /v2.0/quotas/{project}", s.authed(show))
	s.mux.HandleFunc("GET /v2.0/quotas/{project}/default", s.authed(show))
	s.mux.HandleFunc("GET /v2.0/quotas/{project}/details", s.authed(func(c *call, w http.ResponseWriter) {
		p, err := c.quotaProject()
		if err != nil {
			writeError(w, toError(err))
			return
		}
		var u map[string]int
		_ = c.read(func(st *vpc.State) error { u = usage(st, p); return nil })
		o := obj{}
		for k, v := range quotas {
			o[k] = obj{"limit": v, "used": u[k], "reserved": 0}
		}
		writeJSON(w, http.StatusOK, obj{"quota": o})
	}))
	s.mux.HandleFunc("PUT /v2.0/quotas/{project}", s.authed(func(c *call, w http.ResponseWriter) {
		if !c.admin {
			writeError(w, forbidden("Only an admin may change quotas."))
			return
		}
		writeError(w, badRequest("Quotas are Neutron's defaults on Canopy and cannot be changed (%v).", slices.Sorted(maps.Keys(quotas))))
	}))
	s.mux.HandleFunc("DELETE /v2.0/quotas/{project}", s.authed(func(c *call, w http.ResponseWriter) {
		// Back to the defaults: they are what every project has.
		if !c.admin {
			writeError(w, forbidden("Only an admin may reset quotas."))
			return
		}
		if _, err := c.quotaProject(); err != nil {
			writeError(w, toError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}
