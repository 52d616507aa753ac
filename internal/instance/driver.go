package instance

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

//go:embed udhcpc.sh
var dhcpScript []byte

// NamespaceName is the network namespace of an instance: ci- and the last
// 13 hex digits of its id (contract item 5).
func NamespaceName(instanceID string) string {
	h := instanceID
	if len(h) > 13 {
		h = h[len(h)-13:]
	}
	return "ci-" + h
}

// State is the value of an instance's state key (contract item 4).
type State struct {
	HostID     string               `json:"host_id"`
	State      string               `json:"state"`
	Interfaces map[string]Interface `json:"interfaces"`
	Netns      string               `json:"netns"`
}

// Interface is one ENI of a running instance.
type Interface struct {
	Ifname string `json:"ifname"` // the host end of its veth pair (what the port is bound to)
	IP     string `json:"ip"`
}

// Config configures a driver.
type Config struct {
	Store    *nsdb.Store
	HostID   string
	StateDir string // the driver's records, pid files, logs and DHCP script
	// Lease returns the agent's current host lease (nil while it has none).
	Lease  func() *nsdb.Lease
	Logger *slog.Logger
	// Busybox is the busybox binary (default "busybox" on PATH).
	Busybox string
	// Retry is how soon an instance still coming up is looked at again
	// (default 50 ms): the agent's plug or the DHCP lease is expected any moment.
	Retry time.Duration
}

// Driver realizes the instances placed on one host.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	script string
	kick   chan struct{}
	loaded chan struct{} // closed once the first VPC list is in

	mu sync.Mutex
	st *vpc.State

	// Owned by the reconcile loop.
	written map[string]written // instance id → what its state key holds
	reboots map[string]int     // instance id → reboot generation seen
}

type written struct {
	val   string
	lease *nsdb.Lease
}

// New checks cfg.
func New(cfg Config) (*Driver, error) {
	if cfg.Store == nil || cfg.HostID == "" || cfg.StateDir == "" || cfg.Lease == nil {
		return nil, errors.New("instance driver: Store, HostID, StateDir and Lease are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Busybox == "" {
		cfg.Busybox = "busybox"
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 50 * time.Millisecond
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With("driver", "netns"), kick: make(chan struct{}, 1),
		loaded:  make(chan struct{}),
		written: map[string]written{}, reboots: map[string]int{}}, nil
}

func (d *Driver) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run follows the VPC objects and reconciles until ctx is done. It leaves
// the instances running when it returns: a restarted agent re-adopts them
// (Purge removes them).
func (d *Driver) Run(ctx context.Context) error {
	if err := os.MkdirAll(d.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("instance driver: %w", err)
	}
	d.script = filepath.Join(d.cfg.StateDir, "udhcpc.sh")
	if err := os.WriteFile(d.script+".tmp", dhcpScript, 0o755); err != nil {
		return fmt.Errorf("instance driver: %w", err)
	}
	if err := os.Rename(d.script+".tmp", d.script); err != nil {
		return fmt.Errorf("instance driver: %w", err)
	}
	s := d.cfg.Store
	var once sync.Once
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		_ = s.WatchVPCObjects(wctx, nsdb.Handler{
			Reset: func(kvs []nsdb.KV, _ int64) {
				st, err := nsdb.DecodeVPCState(s.Prefix(), kvs)
				if err != nil {
					d.log.Warn("instance driver: decoding VPC objects", "err", err)
				}
				d.mu.Lock()
				d.st = st
				d.mu.Unlock()
				once.Do(func() { close(d.loaded) })
				d.poke()
			},
			Events: func(evs []nsdb.Event, _ int64) {
				d.mu.Lock()
				err := nsdb.ApplyVPCEvents(s.Prefix(), d.st, evs)
				d.mu.Unlock()
				if err != nil {
					d.log.Warn("instance driver: applying VPC changes", "err", err)
				}
				d.poke()
			},
		})
	})
	select {
	case <-d.loaded:
	case <-ctx.Done():
		return nil
	}
	d.log.Info("instance driver: up", "state_dir", d.cfg.StateDir)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		if d.reconcile(ctx) {
			retry = time.After(d.cfg.Retry)
		} else {
			retry = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		case <-tick.C:
		case <-retry:
		}
	}
}

// want is one instance to realize.
type want struct {
	id     string
	ns     string
	reboot int
	ifaces []wantIface // device index order
}

type wantIface struct {
	eni    string
	host   string // vpc.HostInterfaceName(eni)
	inner  string // eth<device index>
	mac    string
	ip     string
	device int
}

// desired lists the instances placed on this host. Caller holds mu.
func (d *Driver) desired() map[string]*want {
	out := map[string]*want{}
	if d.st == nil {
		return out
	}
	for _, in := range d.st.Instances {
		if in.HostID != d.cfg.HostID || !in.Placed() {
			continue
		}
		out[NamespaceName(in.ID)] = &want{id: in.ID, ns: NamespaceName(in.ID), reboot: in.Reboots}
	}
	for _, e := range d.st.NetworkInterfaces {
		a := e.Attachment
		if a == nil {
			continue
		}
		w := out[NamespaceName(a.InstanceID)]
		if w == nil || w.id != a.InstanceID {
			continue
		}
		ip := ""
		if p := e.PrimaryIP(); p.IsValid() {
			ip = p.String()
		}
		w.ifaces = append(w.ifaces, wantIface{eni: e.ID, host: vpc.HostInterfaceName(e.ID),
			inner: "eth" + strconv.Itoa(a.DeviceIndex), mac: e.MacAddress, ip: ip, device: a.DeviceIndex})
	}
	for _, w := range out {
		slices.SortFunc(w.ifaces, func(a, b wantIface) int { return a.device - b.device })
	}
	return out
}

// reconcile brings the namespaces in line with the desired instances and
// reports whether one is still coming up.
func (d *Driver) reconcile(ctx context.Context) (pending bool) {
	d.mu.Lock()
	want := d.desired()
	d.mu.Unlock()

	recs, err := readRecords(d.cfg.StateDir)
	if err != nil {
		d.log.Warn("instance driver: reading records", "err", err)
	}
	for _, r := range recs {
		if w, ok := want[r.Netns]; ok && w.id == r.InstanceID {
			continue
		}
		d.log.Info("instance driver: tearing down", "instance_id", r.InstanceID, "netns", r.Netns)
		if err := teardown(d.cfg.StateDir, r); err != nil {
			d.log.Warn("instance driver: teardown", "instance_id", r.InstanceID, "err", err)
			pending = true
			continue
		}
		d.deleteKey(ctx, r.InstanceID)
	}
	for _, w := range want {
		ready, err := d.realize(w)
		if err != nil {
			d.log.Warn("instance driver: realizing", "instance_id", w.id, "err", err)
		}
		if !ready {
			pending = true
			continue
		}
		if err := d.writeKey(ctx, w); err != nil {
			d.log.Warn("instance driver: writing state", "instance_id", w.id, "err", err)
			pending = true
		}
	}
	return pending
}

// writeKey puts the instance's state key if it is not there yet with this
// value and the agent's current lease.
func (d *Driver) writeKey(ctx context.Context, w *want) error {
	l := d.cfg.Lease()
	if l == nil {
		return errors.New("the agent holds no host lease yet")
	}
	st := State{HostID: d.cfg.HostID, State: "running", Netns: w.ns, Interfaces: map[string]Interface{}}
	for _, f := range w.ifaces {
		st.Interfaces[f.eni] = Interface{Ifname: f.host, IP: f.ip}
	}
	b, _ := json.Marshal(st)
	if old, ok := d.written[w.id]; ok && old.val == string(b) && old.lease == l {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.cfg.Store.PutInstanceState(cctx, d.cfg.HostID, w.id, b, l); err != nil {
		return err
	}
	d.written[w.id] = written{val: string(b), lease: l}
	d.log.Info("instance driver: instance running", "instance_id", w.id, "netns", w.ns)
	return nil
}

func (d *Driver) deleteKey(ctx context.Context, id string) {
	delete(d.written, id)
	delete(d.reboots, id)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.cfg.Store.DeleteInstanceState(cctx, d.cfg.HostID, id); err != nil {
		d.log.Warn("instance driver: deleting state", "instance_id", id, "err", err)
	}
}
