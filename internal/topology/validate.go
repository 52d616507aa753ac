package topology

// Placeholder validation: replaced by the full per-field validation.

func (*Router) Validate() error      { return nil }
func (*Bridge) Validate() error      { return nil }
func (*Port) Validate() error        { return nil }
func (*Route) Validate() error       { return nil }
func (*Chain) Validate() error       { return nil }
func (*IPAddrGroup) Validate() error { return nil }
func (*PortGroup) Validate() error   { return nil }
func (*Host) Validate() error        { return nil }
func (*TunnelZone) Validate() error  { return nil }
func (*DHCPSubnet) Validate() error  { return nil }
