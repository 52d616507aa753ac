package ec2

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// AccountInfo is an account as the admin API shows it.
type AccountInfo struct {
	AccountID  string   `json:"account_id"`
	Name       string   `json:"name"`
	AccessKeys []string `json:"access_keys,omitempty"`
}

// NewCredentials is what creating an account answers: the only time the
// secret is shown.
type NewCredentials struct {
	AccountID       string `json:"account_id"`
	Name            string `json:"name"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// DefaultVpcCIDR is the block of every account's default VPC.
var DefaultVpcCIDR = netip.MustParsePrefix("172.31.0.0/16")

// CreateAccount creates an account named name with an access key, and in the
// same transaction its default VPC (AWS's layout: 172.31.0.0/16, a /20
// default subnet per zone, an attached internet gateway, a main route table
// with the local route and 0.0.0.0/0 to the gateway, the default group and
// ACL, and default DHCP options).
func (s *Server) CreateAccount(ctx context.Context, name string) (*NewCredentials, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "/\n\t") {
		return nil, &topology.FieldError{Field: "name", Reason: "an account name is 1 to 64 characters without '/' or control characters"}
	}
	nc := &NewCredentials{Name: name, AccessKeyID: newAccessKeyID(), SecretAccessKey: newSecret()}
	_, err := s.store.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, a := range st.Accounts {
			if a.Name == name {
				return &topology.ConflictError{Field: "name", Reason: fmt.Sprintf("an account named %q exists (%s)", name, a.ID)}
			}
		}
		id := newAccountID()
		for st.Accounts[id] != nil {
			id = newAccountID()
		}
		nc.AccountID = id
		if err := tx.Put(id, &vpc.Account{ID: id, Name: name}); err != nil {
			return err
		}
		rec, err := json.Marshal(accessKeyRecord{AccountID: id, SealedSecret: s.sealer.seal(nc.AccessKeyID, nc.SecretAccessKey), Created: s.now().UTC()})
		if err != nil {
			return err
		}
		if err := tx.PutKey(nsdb.AccessKeyRel(nc.AccessKeyID), rec); err != nil {
			return err
		}
		return s.createDefaultVpc(tx, id)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("ec2: account created", "account", nc.AccountID, "name", name, "access_key", nc.AccessKeyID)
	return nc, nil
}

func (s *Server) createDefaultVpc(tx *nsdb.VPCTx, owner string) error {
	st := tx.State()
	dopt := &vpc.DhcpOptions{ID: newID(vpc.KindDhcpOptions), OwnerID: owner, Config: map[string][]string{
		vpc.DhcpDomainName:        {domainName(s.cfg.Region)},
		vpc.DhcpDomainNameServers: {vpc.AmazonProvidedDNS},
	}}
	if err := tx.Put(dopt.ID, dopt); err != nil {
		return err
	}
	v, err := s.putNewVpc(tx, owner, DefaultVpcCIDR, true, nil)
	if err != nil {
		return err
	}
	v = cloneVpc(v)
	v.DhcpOptionsID = dopt.ID
	v.EnableDNSHostnames = true
	if err := tx.Put(v.ID, v); err != nil {
		return err
	}
	igw := &vpc.InternetGateway{ID: newID(vpc.KindInternetGW), OwnerID: owner,
		Attachments: []vpc.IGWAttachment{{VpcID: v.ID, State: vpc.StateAvailable}}}
	if err := tx.Put(igw.ID, igw); err != nil {
		return err
	}
	main := cloneRouteTable(st.MainRouteTable(v.ID))
	main.Routes = append(main.Routes, vpc.Route{DestinationCidrBlock: netip.MustParsePrefix("0.0.0.0/0"),
		GatewayID: igw.ID, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive})
	if err := tx.Put(main.ID, main); err != nil {
		return err
	}
	for i, az := range s.cfg.Zones {
		if i >= 16 { // 16 /20s fill the /16
			break
		}
		sub := &vpc.Subnet{ID: newID(vpc.KindSubnet), OwnerID: owner, VpcID: v.ID,
			CidrBlock:        netip.PrefixFrom(vpc.Nth(DefaultVpcCIDR, i<<12), 20),
			AvailabilityZone: az, State: vpc.StateAvailable, DefaultForAz: true, MapPublicIPOnLaunch: true}
		if err := tx.Put(sub.ID, sub); err != nil {
			return err
		}
	}
	return nil
}

func domainName(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

// DeleteAccount removes an account, its access keys and every resource it
// owns, in one transaction.
func (s *Server) DeleteAccount(ctx context.Context, id string) error {
	keys, err := s.accessKeys(ctx)
	if err != nil {
		return err
	}
	_, err = s.store.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		if st.Accounts[id] == nil {
			return fmt.Errorf("account %s: %w", id, nsdb.ErrNotFound)
		}
		for _, k := range keys[id] {
			if err := tx.DeleteKey(nsdb.AccessKeyRel(k)); err != nil {
				return err
			}
		}
		return deleteOwned(st, tx, id)
	})
	if err == nil {
		s.log.Info("ec2: account deleted", "account", id)
		// Client tokens only name objects that are gone now.
		if err := s.store.Store().DeleteClientTokens(ctx, id); err != nil {
			s.log.Warn("ec2: forgetting the deleted account's client tokens", "account", id, "err", err)
		}
	}
	return err
}

// deleteOwned deletes every object owner owns, and the account.
func deleteOwned(st *vpc.State, tx *nsdb.VPCTx, owner string) error {
	del := func(coll string, ids []string) error {
		for _, id := range ids {
			if err := tx.Delete(coll, id); err != nil {
				return err
			}
		}
		return nil
	}
	var errs []error
	errs = append(errs, del("vpcs", ownedIDs(st.Vpcs, owner, func(v *vpc.Vpc) string { return v.OwnerID })))
	errs = append(errs, del("subnets", ownedIDs(st.Subnets, owner, func(v *vpc.Subnet) string { return v.OwnerID })))
	errs = append(errs, del("internet_gateways", ownedIDs(st.InternetGateways, owner, func(v *vpc.InternetGateway) string { return v.OwnerID })))
	errs = append(errs, del("route_tables", ownedIDs(st.RouteTables, owner, func(v *vpc.RouteTable) string { return v.OwnerID })))
	errs = append(errs, del("security_groups", ownedIDs(st.SecurityGroups, owner, func(v *vpc.SecurityGroup) string { return v.OwnerID })))
	errs = append(errs, del("network_acls", ownedIDs(st.NetworkACLs, owner, func(v *vpc.NetworkACL) string { return v.OwnerID })))
	errs = append(errs, del("network_interfaces", ownedIDs(st.NetworkInterfaces, owner, func(v *vpc.NetworkInterface) string { return v.OwnerID })))
	errs = append(errs, del("addresses", ownedIDs(st.Addresses, owner, func(v *vpc.Address) string { return v.OwnerID })))
	errs = append(errs, del("nat_gateways", ownedIDs(st.NatGateways, owner, func(v *vpc.NatGateway) string { return v.OwnerID })))
	errs = append(errs, del("dhcp_options", ownedIDs(st.DhcpOptions, owner, func(v *vpc.DhcpOptions) string { return v.OwnerID })))
	errs = append(errs, del("instances", ownedIDs(st.Instances, owner, func(v *vpc.Instance) string { return v.OwnerID })))
	errs = append(errs, del("key_pairs", ownedIDs(st.KeyPairs, owner, func(v *vpc.KeyPair) string { return v.OwnerID })))
	errs = append(errs, del("subnet_pools", ownedIDs(st.SubnetPools, owner, func(v *vpc.SubnetPool) string { return v.OwnerID })))
	errs = append(errs, tx.Delete("accounts", owner))
	return errors.Join(errs...)
}

func ownedIDs[T any](m map[string]*T, owner string, of func(*T) string) []string {
	var out []string
	for id, v := range m {
		if of(v) == owner {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// accessKeys returns the access key ids of every account.
func (s *Server) accessKeys(ctx context.Context) (map[string][]string, error) {
	recs, err := s.store.Store().AccessKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for k, v := range recs {
		var rec accessKeyRecord
		if json.Unmarshal(v, &rec) != nil {
			continue
		}
		out[rec.AccountID] = append(out[rec.AccountID], k)
	}
	return out, nil
}

// ListAccounts returns every account with its access key ids, by id.
func (s *Server) ListAccounts(ctx context.Context) ([]AccountInfo, error) {
	keys, err := s.accessKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []AccountInfo
	s.store.Read(func(st *vpc.State) {
		for _, a := range st.Accounts {
			ks := keys[a.ID]
			sort.Strings(ks)
			out = append(out, AccountInfo{AccountID: a.ID, Name: a.Name, AccessKeys: ks})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].AccountID < out[j].AccountID })
	return out, nil
}

func newAccountID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(9e11))
	return fmt.Sprintf("%012d", n.Int64()+1e11) // 12 digits, no leading zero
}

func newAccessKeyID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "AKIA" + base32.StdEncoding.EncodeToString(b)
}

func newSecret() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b) // 40 characters
}
