package ec2

import (
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateDefaultVpc", createDefaultVpcAction)
}

// createDefaultVpcAction is CreateDefaultVpc: the account's default VPC made
// again, as its creation made it (subnets, internet gateway, routes, DHCP
// options), while it has none; DefaultVpcAlreadyExists otherwise.
func createDefaultVpcAction(c *call) (*node, error) {
	var id string
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if d := defaultVpcOf(st, c.acct); d != "" {
			return &vpc.Error{Code: vpc.CodeDefaultVpcAlreadyExists, Message: "A Default VPC already exists for this account in this region."}
		}
		if err := vpc.CheckCreateVpc(st, c.acct, DefaultVpcCIDR, c.s.cfg.Limits); err != nil {
			return err
		}
		if err := c.s.createDefaultVpc(tx, c.acct); err != nil {
			return err
		}
		id = defaultVpcOf(tx.State(), c.acct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	c.s.store.Read(func(st *vpc.State) {
		if v := st.Vpcs[id]; v != nil {
			renderVpc(res.el("vpc"), v)
		}
	})
	return res, nil
}
