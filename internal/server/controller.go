package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// LoadCloudConfig reads the operator's description of the cloud's edge
// (gateways, public pools, MTU, DNS, BGP) from a JSON file; an empty path
// means no gateway yet. Public pools left out of the file are those of the
// EC2 endpoint's elastic IP pool, so the edge blackholes what it hands out.
func LoadCloudConfig(path string, ec2Pool string) (translate.CloudConfig, error) {
	var cc translate.CloudConfig
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cc, fmt.Errorf("--cloud-config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields() // a misspelt key must not be silently ignored
		if err := dec.Decode(&cc); err != nil {
			return cc, fmt.Errorf("--cloud-config %s: %w", path, err)
		}
		if err := cc.Validate(); err != nil {
			return cc, fmt.Errorf("--cloud-config %s: %w", path, err)
		}
	}
	if ec2Pool == "" {
		return cc, nil
	}
	ranges, err := ec2.ParsePool(ec2Pool)
	if err != nil {
		return cc, fmt.Errorf("--ec2-public-pool: %w", err)
	}
	if len(cc.PublicPools) == 0 {
		for _, r := range ranges {
			cc.PublicPools = append(cc.PublicPools, rangePrefixes(r.First, r.Last)...)
		}
		return cc, nil
	}
	// Both given: every address the EC2 endpoint hands out must be in a
	// pool, which the edge blackholes, advertises and answers ARP for.
	for _, r := range ranges {
		// Walk the range pool by pool.
		for a := r.First; a.IsValid() && !r.Last.Less(a); {
			i := slices.IndexFunc(cc.PublicPools, func(p netip.Prefix) bool { return p.Contains(a) })
			if i < 0 {
				return cc, fmt.Errorf("--ec2-public-pool %s-%s: %s is in none of the cloud config's public_pools %v (the edge would neither route nor advertise it)", r.First, r.Last, a, cc.PublicPools)
			}
			// Past the pool's last address (the zero Addr after 255.255.255.255).
			a = addr(u32(cc.PublicPools[i].Addr()) | (1<<(32-cc.PublicPools[i].Bits()) - 1)).Next()
		}
	}
	return cc, nil
}

// rangePrefixes returns the fewest prefixes covering first..last exactly.
func rangePrefixes(first, last netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	a, b := u32(first), u32(last)
	for a <= b {
		bits := 32
		// Grow the block while it stays aligned at a and inside the range.
		for bits > 0 {
			size := uint64(1) << (32 - (bits - 1))
			if uint64(a)%size != 0 || uint64(a)+size-1 > uint64(b) {
				break
			}
			bits--
		}
		out = append(out, netip.PrefixFrom(addr(a), bits))
		next := uint64(a) + uint64(1)<<(32-bits)
		if next > uint64(b) {
			break
		}
		a = uint32(next)
	}
	return out
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// runController runs the controller — the VPC→topology translation and
// every other reconciler (hosts, instance and NAT gateway life cycles,
// instance recovery) — while this server is the elected leader among the
// servers sharing the store: with several servers on one etcd cluster
// exactly one reconciles at a time, and another takes over within the
// session TTL when it dies. It returns when ctx is done.
func runController(ctx context.Context, store *nsdb.Store, cloud translate.CloudConfig, life controller.LifecycleConfig, log *slog.Logger) {
	for ctx.Err() == nil {
		if err := leadOnce(ctx, store, cloud, life, log); err != nil && ctx.Err() == nil {
			log.Warn("controller leadership lost; campaigning again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// LeaderTTL is how long the controller leader's session lives after its
// server stops renewing it: the longest a dead leader's work waits for the
// next one.
const LeaderTTL = 10 * time.Second

func leadOnce(ctx context.Context, store *nsdb.Store, cloud translate.CloudConfig, life controller.LifecycleConfig, log *slog.Logger) error {
	host, _ := os.Hostname()
	lead, err := store.CampaignController(ctx, fmt.Sprintf("%s/%d", host, os.Getpid()), LeaderTTL)
	if err != nil {
		return err
	}
	defer lead.Close()
	log.Info("elected controller leader")
	// The life cycles write VPC objects through their own mirror, held
	// only while leading.
	vs, err := nsdb.OpenVPCStore(ctx, store)
	if err != nil {
		return err
	}
	defer vs.Close()
	life.Lead = lead
	c := controller.New(store, cloud, log).WithLifecycle(vs, life)
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Stop()
	select {
	case <-ctx.Done():
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = lead.Resign(rctx)
		return nil
	case <-lead.Done():
		return fmt.Errorf("etcd session expired")
	}
}
