package vpc

import "fmt"

// Limits are the per-account and per-object quotas an operator configures.
// Zero fields mean "use the default" (DefaultLimits); see WithDefaults.
type Limits struct {
	VpcsPerAccount             int `json:"vpcs_per_account"`
	SubnetsPerVpc              int `json:"subnets_per_vpc"`
	RouteTablesPerVpc          int `json:"route_tables_per_vpc"`
	RoutesPerTable             int `json:"routes_per_table"`
	SecurityGroupsPerVpc       int `json:"security_groups_per_vpc"`
	RulesPerSecurityGroup      int `json:"rules_per_security_group"` // per direction, as AWS counts
	SecurityGroupsPerInterface int `json:"security_groups_per_interface"`
	NetworkACLsPerVpc          int `json:"network_acls_per_vpc"`
	ACLEntriesPerDirection     int `json:"acl_entries_per_direction"`
	AddressesPerAccount        int `json:"addresses_per_account"`
	NatGatewaysPerAZ           int `json:"nat_gateways_per_az"`
	InternetGatewaysPerAccount int `json:"internet_gateways_per_account"`
	PrivateIPsPerInterface     int `json:"private_ips_per_interface"`
	// InstancesPerAccount bounds the instances of an account that are not
	// terminated (AWS counts vCPUs; a count is what an operator of a small
	// cloud can reason about).
	InstancesPerAccount int `json:"instances_per_account"`
}

// DefaultLimits are AWS's default quotas.
func DefaultLimits() Limits {
	return Limits{
		VpcsPerAccount:             5,
		SubnetsPerVpc:              200,
		RouteTablesPerVpc:          200,
		RoutesPerTable:             50,
		SecurityGroupsPerVpc:       2500,
		RulesPerSecurityGroup:      60,
		SecurityGroupsPerInterface: 5,
		NetworkACLsPerVpc:          200,
		ACLEntriesPerDirection:     20,
		AddressesPerAccount:        5,
		NatGatewaysPerAZ:           5,
		InternetGatewaysPerAccount: 5,
		PrivateIPsPerInterface:     50,
		InstancesPerAccount:        20,
	}
}

// WithDefaults returns l with every zero field set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	for _, f := range l.fields() {
		if *f.v == 0 {
			*f.v = *d.field(f.name)
		}
	}
	return l
}

// Validate refuses negative limits and SecurityGroupsPerInterface above 16
// (AWS's hard ceiling).
func (l Limits) Validate() error {
	for _, f := range l.fields() {
		if *f.v < 0 {
			return fmt.Errorf("limit %s: %d is negative", f.name, *f.v)
		}
	}
	if l.SecurityGroupsPerInterface > 16 {
		return fmt.Errorf("limit security_groups_per_interface: %d is above 16", l.SecurityGroupsPerInterface)
	}
	return nil
}

type limitField struct {
	name string
	v    *int
}

func (l *Limits) fields() []limitField {
	return []limitField{
		{"vpcs_per_account", &l.VpcsPerAccount},
		{"subnets_per_vpc", &l.SubnetsPerVpc},
		{"route_tables_per_vpc", &l.RouteTablesPerVpc},
		{"routes_per_table", &l.RoutesPerTable},
		{"security_groups_per_vpc", &l.SecurityGroupsPerVpc},
		{"rules_per_security_group", &l.RulesPerSecurityGroup},
		{"security_groups_per_interface", &l.SecurityGroupsPerInterface},
		{"network_acls_per_vpc", &l.NetworkACLsPerVpc},
		{"acl_entries_per_direction", &l.ACLEntriesPerDirection},
		{"addresses_per_account", &l.AddressesPerAccount},
		{"nat_gateways_per_az", &l.NatGatewaysPerAZ},
		{"internet_gateways_per_account", &l.InternetGatewaysPerAccount},
		{"private_ips_per_interface", &l.PrivateIPsPerInterface},
		{"instances_per_account", &l.InstancesPerAccount},
	}
}

func (l *Limits) field(name string) *int {
	for _, f := range l.fields() {
		if f.name == name {
			return f.v
		}
	}
	return nil
}
