package ec2

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The image catalogue and the instance types. Canopy runs no disk images:
// an image is the name an operator gives to what the instance driver starts
// (the netns driver starts a network namespace whatever the image), and
// the catalogue is what DescribeImages and RunInstances agree on, so that
// clients that look an image up before launching (terraform's aws_ami data
// source, the CLI) find one.

func init() {
	register("DescribeImages", describeImages)
	register("DescribeInstanceTypes", describeInstanceTypes)
}

// Image is one entry of the operator's image catalogue (--ec2-images, a
// JSON array of these).
type Image struct {
	ID           string    `json:"id"` // ami- and 8 or 17 hex digits
	Name         string    `json:"name"`
	Description  string    `json:"description,omitempty"`
	Architecture string    `json:"architecture,omitempty"` // x86_64 (default)
	OwnerID      string    `json:"owner_id,omitempty"`     // default 000000000000
	OwnerAlias   string    `json:"owner_alias,omitempty"`  // default "canopy"
	RootSizeGiB  int       `json:"root_size_gib,omitempty"`
	CreationDate time.Time `json:"creation_date,omitzero"`
}

// KindImage is the id kind of images.
var KindImage = vpc.IDKind{Prefix: "ami", NotFound: vpc.CodeInvalidAMIIDNotFound, Malformed: vpc.CodeInvalidAMIIDMalformed}

// DefaultImages is the catalogue when the operator gives none.
func DefaultImages() []Image {
	return []Image{
		{ID: "ami-0deb1a12c0ffee001", Name: "canopy-debian-12-amd64", Description: "Debian 12 (bookworm), amd64 — a Canopy instance label: the netns driver runs no disk image"},
		{ID: "ami-0deb1a12c0ffee002", Name: "canopy-debian-12-amd64-minimal", Description: "Debian 12 (bookworm), amd64, minimal — a Canopy instance label"},
	}
}

// withDefaults fills an image's optional fields.
func (im Image) withDefaults() Image {
	if im.Architecture == "" {
		im.Architecture = "x86_64"
	}
	if im.OwnerID == "" {
		im.OwnerID = "000000000000"
	}
	if im.OwnerAlias == "" {
		im.OwnerAlias = "canopy"
	}
	if im.RootSizeGiB == 0 {
		im.RootSizeGiB = 8
	}
	if im.CreationDate.IsZero() {
		im.CreationDate = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	return im
}

// validate checks one catalogue entry.
func (im Image) validate() error {
	if err := vpc.ParseID(KindImage, im.ID); err != nil {
		return fmt.Errorf("image %q: id must be ami- and 8 or 17 lowercase hex digits", im.ID)
	}
	if im.Name == "" {
		return fmt.Errorf("image %s: name is empty", im.ID)
	}
	if im.Architecture != "" && im.Architecture != "x86_64" && im.Architecture != "arm64" {
		return fmt.Errorf("image %s: architecture %q is not x86_64 or arm64", im.ID, im.Architecture)
	}
	return nil
}

// LoadImages reads an image catalogue file (a JSON array of Image); "" is
// the default catalogue.
func LoadImages(path string) ([]Image, error) {
	if path == "" {
		return DefaultImages(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("image catalogue: %w", err)
	}
	var ims []Image
	if err := json.Unmarshal(b, &ims); err != nil {
		return nil, fmt.Errorf("image catalogue %s: %w", path, err)
	}
	if err := checkImages(ims); err != nil {
		return nil, fmt.Errorf("image catalogue %s: %w", path, err)
	}
	return ims, nil
}

func checkImages(ims []Image) error {
	seen := map[string]bool{}
	for _, im := range ims {
		if err := im.validate(); err != nil {
			return err
		}
		if seen[im.ID] {
			return fmt.Errorf("image %s is listed twice", im.ID)
		}
		seen[im.ID] = true
	}
	return nil
}

// image looks an image up in the catalogue: Malformed or NotFound as AWS
// answers.
func (s *Server) image(id string) (Image, error) {
	if err := vpc.ParseID(KindImage, id); err != nil {
		return Image{}, err
	}
	for _, im := range s.cfg.Images {
		if im.ID == id {
			return im.withDefaults(), nil
		}
	}
	return Image{}, &vpc.Error{Code: KindImage.NotFound, Message: fmt.Sprintf("The image id '[%s]' does not exist", id)}
}

const rootDevice = "/dev/xvda"

var imageResource = resource[Image]{
	kind: KindImage, idParam: "ImageId",
	id:    func(im *Image) string { return im.ID },
	owner: func(*Image) string { return "" },
	fields: func(im *Image) fields {
		return fields{"image-id": {im.ID}, "name": {im.Name}, "description": {im.Description}, "architecture": {im.Architecture},
			"owner-id": {im.OwnerID}, "owner-alias": {im.OwnerAlias}, "state": {"available"}, "is-public": {"true"},
			"image-type": {"machine"}, "root-device-type": {"ebs"}, "root-device-name": {rootDevice},
			"virtualization-type": {"hvm"}, "hypervisor": {"xen"}, "platform-details": {"Linux/UNIX"},
			"ena-support": {"true"}, "creation-date": {im.CreationDate.Format(time.RFC3339)}}
	},
	tags:    func(*Image) vpc.Tags { return nil },
	maxPage: 1000,
}

func describeImages(c *call) (*node, error) {
	if c.dryRun {
		return nil, errDryRun
	}
	all := map[string]*Image{}
	for _, im := range c.s.cfg.Images {
		im := im.withDefaults()
		all[im.ID] = &im
	}
	// The catalogue belongs to nobody: describe() filters by owner, so run
	// it as "". Unknown ids answer InvalidAMIID.NotFound, as on AWS.
	cc := *c
	cc.acct = ""
	ims, next, err := describe(&cc, all, imageResource)
	if err != nil {
		return nil, err
	}
	// Owner.N: self, an account id or an alias; the catalogue is owned by
	// its owner ids/aliases, never by the caller ("self").
	if owners := c.p.list("Owner"); len(owners) > 0 {
		ims = slices.DeleteFunc(ims, func(im *Image) bool {
			return !slices.Contains(owners, im.OwnerID) && !slices.Contains(owners, im.OwnerAlias)
		})
	}
	res := newNode("")
	set := res.set("imagesSet")
	for _, im := range ims {
		renderImage(set.item(), im)
	}
	res.opt("nextToken", next)
	return res, nil
}

func renderImage(n *node, im *Image) {
	n.s("imageId", im.ID).s("imageLocation", im.OwnerAlias+"/"+im.Name).s("imageState", "available")
	n.s("imageOwnerId", im.OwnerID).s("creationDate", im.CreationDate.Format("2006-01-02T15:04:05.000Z")).b("isPublic", true)
	n.s("architecture", im.Architecture).s("imageType", "machine").s("imageOwnerAlias", im.OwnerAlias)
	n.s("name", im.Name).s("description", im.Description).s("rootDeviceType", "ebs").s("rootDeviceName", rootDevice)
	bd := n.set("blockDeviceMapping").item().s("deviceName", rootDevice).el("ebs")
	bd.s("snapshotId", "snap-"+im.ID[len("ami-"):]).i("volumeSize", im.RootSizeGiB).b("deleteOnTermination", true).s("volumeType", "gp3").b("encrypted", false)
	n.s("virtualizationType", "hvm").s("hypervisor", "xen").b("enaSupport", true)
	n.s("platformDetails", "Linux/UNIX").s("usageOperation", "RunInstances").s("bootMode", "legacy-bios")
	n.set("productCodes")
	n.tagSet(nil)
}

// instanceType is one offered instance type. Canopy does not enforce CPU
// or memory (the netns driver has none to give); the numbers are what
// clients see, and MaxENIs/IPsPerENI are enforced by RunInstances and the
// interface calls' limits.
type instanceType struct {
	name       string
	vcpus      int
	memMiB     int
	network    string
	maxENIs    int
	ipsPerENI  int
	burstable  bool
	clockGHz   float64
	freeTier   bool
	generation bool
}

// instanceTypes is the offered list (AWS's figures for these types).
var instanceTypes = []instanceType{
	{"t3.nano", 2, 512, "Up to 5 Gigabit", 2, 2, true, 2.5, false, true},
	{"t3.micro", 2, 1024, "Up to 5 Gigabit", 2, 2, true, 2.5, true, true},
	{"t3.small", 2, 2048, "Up to 5 Gigabit", 3, 4, true, 2.5, false, true},
	{"t3.medium", 2, 4096, "Up to 5 Gigabit", 3, 6, true, 2.5, false, true},
	{"t3.large", 2, 8192, "Up to 5 Gigabit", 3, 12, true, 2.5, false, true},
	{"m5.large", 2, 8192, "Up to 10 Gigabit", 3, 10, false, 3.1, false, true},
	{"m5.xlarge", 4, 16384, "Up to 10 Gigabit", 4, 15, false, 3.1, false, true},
	{"c5.large", 2, 4096, "Up to 10 Gigabit", 3, 10, false, 3.4, false, true},
}

// DefaultInstanceType is used when RunInstances names none (AWS's default,
// m1.small, is not offered).
const DefaultInstanceType = "t3.micro"

func lookupInstanceType(name string) (instanceType, bool) {
	for _, t := range instanceTypes {
		if t.name == name {
			return t, true
		}
	}
	return instanceType{}, false
}

var instanceTypeResource = resource[instanceType]{
	id:    func(t *instanceType) string { return t.name },
	owner: func(*instanceType) string { return "" },
	fields: func(t *instanceType) fields {
		return fields{"instance-type": {t.name}, "current-generation": {boolStr(t.generation)}, "free-tier-eligible": {boolStr(t.freeTier)},
			"burstable-performance-supported": {boolStr(t.burstable)}, "processor-info.supported-architecture": {"x86_64"},
			"vcpu-info.default-vcpus": {strconv.Itoa(t.vcpus)}, "memory-info.size-in-mib": {strconv.Itoa(t.memMiB)},
			"network-info.maximum-network-interfaces": {strconv.Itoa(t.maxENIs)}, "supported-usage-class": {"on-demand"},
			"supported-virtualization-type": {"hvm"}, "supported-root-device-type": {"ebs"}, "hypervisor": {"nitro"}, "bare-metal": {"false"}}
	},
	tags:    func(*instanceType) vpc.Tags { return nil },
	maxPage: 100,
}

func describeInstanceTypes(c *call) (*node, error) {
	if c.dryRun {
		return nil, errDryRun
	}
	all := map[string]*instanceType{}
	for _, t := range instanceTypes {
		all[t.name] = &t
	}
	for _, n := range c.p.list("InstanceType") {
		if all[n] == nil {
			return nil, &vpc.Error{Code: vpc.CodeInvalidInstanceType, Message: fmt.Sprintf("The following supplied instance types do not exist: [%s]", n)}
		}
	}
	cc := *c
	cc.acct = ""
	ts, next, err := describe(&cc, all, instanceTypeResource)
	if err != nil {
		return nil, err
	}
	if names := c.p.list("InstanceType"); len(names) > 0 {
		ts = slices.DeleteFunc(ts, func(t *instanceType) bool { return !slices.Contains(names, t.name) })
	}
	res := newNode("")
	set := res.set("instanceTypeSet")
	for _, t := range ts {
		it := set.item().s("instanceType", t.name).b("currentGeneration", t.generation).b("freeTierEligible", t.freeTier)
		it.set("supportedUsageClasses").s("item", "on-demand")
		it.set("supportedRootDeviceTypes").s("item", "ebs")
		it.set("supportedVirtualizationTypes").s("item", "hvm")
		it.b("bareMetal", false).s("hypervisor", "nitro")
		pi := it.el("processorInfo")
		pi.set("supportedArchitectures").s("item", "x86_64")
		pi.s("sustainedClockSpeedInGhz", strconv.FormatFloat(t.clockGHz, 'f', -1, 64))
		vi := it.el("vCpuInfo").i("defaultVCpus", t.vcpus).i("defaultCores", max(1, t.vcpus/2)).i("defaultThreadsPerCore", min(2, t.vcpus))
		vi.set("validCores").s("item", strconv.Itoa(max(1, t.vcpus/2)))
		vi.set("validThreadsPerCore").s("item", "1").s("item", "2")
		it.el("memoryInfo").i("sizeInMiB", t.memMiB)
		it.b("instanceStorageSupported", false)
		it.el("ebsInfo").s("ebsOptimizedSupport", "default").s("encryptionSupport", "supported").s("nvmeSupport", "required")
		ni := it.el("networkInfo").s("networkPerformance", t.network).i("maximumNetworkInterfaces", t.maxENIs).i("maximumNetworkCards", 1).i("defaultNetworkCardIndex", 0)
		ni.set("networkCards").item().i("networkCardIndex", 0).s("networkPerformance", t.network).i("maximumNetworkInterfaces", t.maxENIs)
		ni.i("ipv4AddressesPerInterface", t.ipsPerENI).i("ipv6AddressesPerInterface", 0).b("ipv6Supported", false)
		ni.s("enaSupport", "required").b("efaSupported", false).b("encryptionInTransitSupported", false)
		it.el("placementGroupInfo").set("supportedStrategies").s("item", "cluster").s("item", "partition").s("item", "spread")
		it.b("hibernationSupported", false).b("burstablePerformanceSupported", t.burstable).b("dedicatedHostsSupported", false).b("autoRecoverySupported", true)
		it.set("supportedBootModes").s("item", "legacy-bios").s("item", "uefi")
	}
	res.opt("nextToken", next)
	return res, nil
}
