package ec2

import (
	"fmt"
	"slices"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The calls clients make around an instance (terraform's aws_instance reads
// all of these after RunInstances): its attributes, its root volume and its
// CPU credit option, each answering from the instance itself.

func init() {
	register("DescribeInstanceAttribute", describeInstanceAttribute)
	register("ModifyInstanceAttribute", modifyInstanceAttribute)
	register("DescribeVolumes", describeVolumes)
	register("DescribeInstanceCreditSpecifications", describeInstanceCreditSpecifications)
}

// kindVolume is the id kind of volumes.
var kindVolume = vpc.IDKind{Prefix: "vol", NotFound: vpc.CodeInvalidVolumeNotFound, Malformed: vpc.CodeInvalidVolumeIDMalformed}

func describeInstanceAttribute(c *call) (*node, error) {
	id, err := c.requiredID("InstanceId", vpc.KindInstance)
	if err != nil {
		return nil, err
	}
	attr, err := c.p.required("Attribute")
	if err != nil {
		return nil, err
	}
	res := newNode("").s("instanceId", id)
	err = c.read(func(st *vpc.State) error {
		i, err := st.Instance(c.acct, id)
		if err != nil {
			return err
		}
		var primary *vpc.NetworkInterface
		if es := instanceInterfaces(st, i.ID); len(es) > 0 && es[0].Attachment.DeviceIndex == 0 {
			primary = es[0]
		}
		value := func(v string) { res.el(attr).s("value", v) }
		switch attr {
		case "instanceType":
			value(i.InstanceType)
		case "userData":
			u := res.el("userData")
			if i.UserData != "" {
				u.s("value", i.UserData)
			}
		case "disableApiTermination":
			value(boolStr(i.DisableAPITermination))
		case "disableApiStop":
			value(boolStr(i.DisableAPIStop))
		case "instanceInitiatedShutdownBehavior":
			value(i.ShutdownBehavior)
		case "rootDeviceName":
			value(rootDevice)
		case "sourceDestCheck":
			value(boolStr(primary == nil || primary.SourceDestCheck))
		case "ebsOptimized":
			value("false")
		case "enaSupport":
			value("true")
		case "kernel", "ramdisk", "sriovNetSupport":
			res.el(attr)
		case "productCodes":
			res.set("productCodes")
		case "enclaveOptions":
			res.el("enclaveOptions").b("enabled", false)
		case "groupSet":
			gs := res.set("groupSet")
			if primary != nil {
				for _, g := range primary.Groups {
					gs.item().s("groupId", g)
				}
			}
		case "blockDeviceMapping":
			bdm := res.set("blockDeviceMapping")
			if i.State != vpc.InstanceTerminated {
				bdm.item().s("deviceName", rootDevice).el("ebs").s("volumeId", rootVolumeID(i.ID)).s("status", "attached").
					s("attachTime", i.LaunchTime.Format("2006-01-02T15:04:05.000Z")).b("deleteOnTermination", true)
			}
		default:
			return invalidValue("Attribute", attr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// modifyInstanceAttribute changes one attribute per call, as AWS requires.
// Type and user data change only while the instance is stopped.
// attributeParams maps ModifyInstanceAttribute's Attribute names to the
// parameter that sets the same attribute.
var attributeParams = map[string]string{
	"disableApiTermination": "DisableApiTermination", "disableApiStop": "DisableApiStop",
	"sourceDestCheck": "SourceDestCheck", "instanceType": "InstanceType", "userData": "UserData",
	"instanceInitiatedShutdownBehavior": "InstanceInitiatedShutdownBehavior",
}

func modifyInstanceAttribute(c *call) (*node, error) {
	id, err := c.requiredID("InstanceId", vpc.KindInstance)
	if err != nil {
		return nil, err
	}
	groups, err := c.ids("GroupId", vpc.KindSecurityGroup)
	if err != nil {
		return nil, err
	}
	type change struct {
		name string
		val  string
	}
	var ch []change
	for _, name := range []string{"DisableApiTermination", "DisableApiStop", "SourceDestCheck", "InstanceType", "UserData", "InstanceInitiatedShutdownBehavior"} {
		if c.p.has(name + ".Value") {
			ch = append(ch, change{name, c.p.str(name + ".Value")})
		}
	}
	// The other form, Attribute=<name>&Value=<value>, as `aws ec2
	// modify-instance-attribute --attribute … --value …` sends it.
	if a := c.p.str("Attribute"); a != "" {
		name := attributeParams[a]
		if name == "" {
			return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: fmt.Sprintf("The attribute '%s' cannot be modified here (modifiable: disableApiTermination, disableApiStop, sourceDestCheck, instanceType, userData, instanceInitiatedShutdownBehavior; groups with GroupId.N).", a)}
		}
		if !c.p.has("Value") {
			return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: fmt.Sprintf("The request must contain the parameter Value (for attribute %s).", a)}
		}
		ch = append(ch, change{name, c.p.str("Value")})
	}
	if len(groups) > 0 {
		ch = append(ch, change{name: "GroupId"})
	}
	if len(ch) != 1 {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: "Exactly one attribute must be modified per call (DisableApiTermination, DisableApiStop, SourceDestCheck, InstanceType, UserData, InstanceInitiatedShutdownBehavior, GroupId)."}
	}
	m := ch[0]
	boolVal := func() (bool, error) { return params{"v": m.val}.boolean("v", false) }
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		i, err := st.Instance(c.acct, id)
		if err != nil {
			return err
		}
		if i.State == vpc.InstanceTerminated || i.State == vpc.InstanceShuttingDown {
			return incorrectState(id, i.State, "modified")
		}
		i = clone(i)
		switch m.name {
		case "DisableApiTermination", "DisableApiStop":
			b, err := boolVal()
			if err != nil {
				return invalidValue(m.name, m.val)
			}
			if m.name == "DisableApiTermination" {
				i.DisableAPITermination = b
			} else {
				i.DisableAPIStop = b
			}
		case "InstanceInitiatedShutdownBehavior":
			if m.val != "stop" && m.val != "terminate" {
				return invalidValue(m.name, m.val)
			}
			i.ShutdownBehavior = m.val
		case "InstanceType", "UserData":
			if i.State != vpc.InstanceStopped {
				return incorrectState(id, i.State, "modified (stop it first)")
			}
			if m.name == "InstanceType" {
				if _, ok := lookupInstanceType(m.val); !ok {
					return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Invalid value '%s' for InstanceType.", m.val)}
				}
				i.InstanceType = m.val
			} else {
				i.UserData = m.val
			}
		case "SourceDestCheck", "GroupId":
			es := instanceInterfaces(st, id)
			if len(es) == 0 {
				return &vpc.Error{Code: vpc.CodeInvalidInstanceID, Message: fmt.Sprintf("Instance %s has no network interface.", id)}
			}
			e := clone(es[0])
			if m.name == "GroupId" {
				if err := vpc.CheckInterfaceGroups(st, c.acct, e.VpcID, groups, c.s.cfg.Limits); err != nil {
					return err
				}
				e.Groups = groups
			} else {
				b, err := boolVal()
				if err != nil {
					return invalidValue(m.name, m.val)
				}
				e.SourceDestCheck = b
			}
			return tx.Put(e.ID, e)
		}
		return tx.Put(i.ID, i)
	})
}

// volume is an instance's root volume as DescribeVolumes shows it.
type volume struct {
	id, owner string
	inst      *vpc.Instance
}

var volumeResource = resource[volume]{
	kind: kindVolume, idParam: "VolumeId",
	id:    func(v *volume) string { return v.id },
	owner: func(v *volume) string { return v.owner },
	fields: func(v *volume) fields {
		f := fields{"volume-id": {v.id}, "status": {"in-use"}, "volume-type": {"gp3"}, "encrypted": {"false"},
			"attachment.instance-id": nil, "attachment.device": {rootDevice}, "attachment.status": {"attached"},
			"attachment.delete-on-termination": {"true"}, "availability-zone": nil, "size": nil}
		if v.inst != nil {
			f["attachment.instance-id"] = []string{v.inst.ID}
			f["availability-zone"] = []string{v.inst.AvailabilityZone}
			f["size"] = []string{fmt.Sprint(v.inst.RootVolumeSize)}
		}
		return f
	},
	tags: func(v *volume) vpc.Tags {
		if v.inst == nil {
			return nil
		}
		return v.inst.VolumeTags
	},
	maxPage: 500,
}

func describeVolumes(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		all := map[string]*volume{}
		for _, i := range st.OwnedInstances(c.acct) {
			if i.State != vpc.InstanceTerminated {
				v := &volume{id: rootVolumeID(i.ID), owner: i.OwnerID, inst: i}
				all[v.id] = v
			}
		}
		vs, next, err := describe(c, all, volumeResource)
		if err != nil {
			return err
		}
		set := res.set("volumeSet")
		for _, v := range vs {
			i := v.inst
			size := i.RootVolumeSize
			if size == 0 {
				size = 8
			}
			it := set.item().s("volumeId", v.id).i("size", size).s("snapshotId", "").s("availabilityZone", i.AvailabilityZone)
			it.s("status", "in-use").s("createTime", i.LaunchTime.Format("2006-01-02T15:04:05.000Z"))
			it.set("attachmentSet").item().s("volumeId", v.id).s("instanceId", i.ID).s("device", rootDevice).s("status", "attached").
				s("attachTime", i.LaunchTime.Format("2006-01-02T15:04:05.000Z")).b("deleteOnTermination", true)
			it.s("volumeType", "gp3").i("iops", 3000).i("throughput", 125).b("encrypted", false).b("multiAttachEnabled", false)
			it.tagSet(i.VolumeTags)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func describeInstanceCreditSpecifications(c *call) (*node, error) {
	if c.p.has("MaxResults") && len(c.p.list("InstanceId")) > 0 {
		return nil, combination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		r := instanceResource(st, c.s.privateDNSName, c.s.publicDNSName)
		is, next, err := describeOwned(c, st.Instances, st.OwnedInstances, r)
		if err != nil {
			return err
		}
		set := res.set("instanceCreditSpecificationSet")
		for _, i := range is {
			if t, ok := lookupInstanceType(i.InstanceType); ok && t.burstable && !slices.Contains([]string{vpc.InstanceTerminated}, i.State) {
				set.item().s("instanceId", i.ID).s("cpuCredits", cpuCredits(i))
			}
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}
