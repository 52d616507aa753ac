// Canopy's kernel fast path: the agent's cached flows executed at TC ingress.
//
// One program serves three kinds of device (devs map):
//   - a port's host-side netdev: look the frame's flow key up in flows and run
//     its actions (DESIGN.md §5.8's fixed vocabulary); a miss goes to the agent
//     through the misses ring buffer and the frame is dropped here (the agent
//     re-injects it once the flow is in this map);
//   - the host's VXLAN device (external/collect_md): deliver by VNI to the port
//     it names; the ingress host simulated the whole path already;
//   - the agent's inject device: frames the agent sends, with the mark naming an
//     action list in the inject map (re-injected misses, ARP/DHCP answers,
//     connection-state messages to peers).
//
// The layouts here are mirrored by the Go types bpf2go generates; change both
// through `go generate ./internal/fastpath`.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MAX_ACTS 16
#define MISS_CAP 2048
#define MISS_SMALL 128 // misses this long or shorter take a small record
#define INJECT_SLOTS 4096
#define INJECT_MARK 0x40000000u
#define STATE_VNI 0xFFFFFFu

#ifndef LIBBPF_PIN_BY_NAME
#define LIBBPF_PIN_BY_NAME 1
#endif

// Action kinds: the values of flow.ActionKind.
enum act_kind {
	ACT_SET_ETH_SRC = 1,
	ACT_SET_ETH_DST,
	ACT_SET_IP_SRC,
	ACT_SET_IP_DST,
	ACT_SET_SRC_PORT,
	ACT_SET_DST_PORT,
	ACT_DEC_TTL,
	ACT_OUTPUT,
	ACT_TUNNEL,
	ACT_DROP,
	ACT_USERSPACE,
};

enum dev_kind {
	DEV_PORT = 0,
	DEV_TUNNEL = 1,
	DEV_INJECT = 2,
};

enum stat {
	STAT_HIT = 0,
	STAT_MISS,
	STAT_MISS_LOST,
	STAT_DROP,
	STAT_TUNNEL_TX,
	STAT_TUNNEL_RX,
	STAT_TUNNEL_UNKNOWN,
	STAT_INJECT,
	STAT_NO_PORT,
	STAT_ERROR,
	STAT_MAX,
};

#define PORT_PEER 1	 // a veth's host end: bpf_redirect_peer into its namespace
#define FLOW_DROP 1	 // the flow drops
#define ACT_LAST_OUT 1 // the flow's last output: redirect, not a clone

// flow_key is agent.flowKey packed for the kernel (host byte order).
struct flow_key {
	__u32 in_key; // tunnel key of the ingress port
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u16 ethertype;
	__u8 eth_src[6];
	__u8 eth_dst[6];
	__u8 proto;
	__u8 ttl;
	__u8 tos;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 frag;
	__u8 size; // length class (agent.sizeClass)
	__u8 pad[3];
};

struct action {
	__u8 kind;
	__u8 flags;
	__u16 port;	 // L4 port, ICMP echo id, or the TTL decrement
	__u32 ip;	 // host byte order
	__u32 key;	 // egress port's tunnel key (output, tunnel)
	__u32 remote; // underlay IPv4 of the tunnel's host (host byte order)
	__u8 mac[6];
	__u8 pad[2];
};

struct flow_val {
	__u64 used_ns; // bpf_ktime_get_ns of the last hit (CLOCK_MONOTONIC)
	__u64 packets;
	__u64 bytes;
	__u32 flags;
	__u32 n_acts;
	struct action acts[MAX_ACTS];
};

struct port_val {
	__u32 ifindex;
	__u32 flags;
};

struct dev_val {
	__u32 key;	// the port's tunnel key (DEV_PORT)
	__u32 kind; // enum dev_kind
};

struct config {
	__u32 tunnel_ifindex; // the VXLAN device; 0: none
	__u32 tunnel_mtu;	  // the underlay's MTU; 0: unknown
};

struct miss {
	struct flow_key key; // as this program computed it (0 when not looked up)
	__u32 ifindex;
	__u32 in_key;
	__u32 len; // the frame's length
	__u32 cap; // bytes of it in data
	__u16 gso_size;
	__u16 looked_up; // 1: key was looked up and missed
	__u32 pad;
	__u8 data[MISS_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); // tunnel key
	__type(value, struct port_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); // ifindex
	__type(value, struct dev_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, INJECT_SLOTS);
	__type(key, __u32);
	__type(value, struct flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} inject SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} misses SEC(".maps");

// A port's share of the miss ring while the ring is congested: a
// generic cell rate (GCRA) per ingress port, its theoretical arrival time
// in ns. Only enforced above MISS_CONGESTED, so a port alone may use the
// whole ring (a burst of new flows); but a port flooding new flows can
// fill it only to that mark, and every other port's misses still get in
// (a flooding VM must not stop its neighbours from opening connections).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); // the miss's in_key (its ingress port's tunnel key)
	__type(value, __u64);
} miss_share SEC(".maps");

#define MISS_CONGESTED (2 << 20)      // bytes waiting in the ring: half of it
#define MISS_SHARE_NS (1000000000 / 2000) // 2,000 misses/s per port above it
#define MISS_SHARE_BURST_NS 50000000  // and bursts of 100

// miss_admitted tells whether in_key's miss may take ring space now.
static __always_inline int miss_admitted(__u32 in_key)
{
	if (bpf_ringbuf_query(&misses, BPF_RB_AVAIL_DATA) < MISS_CONGESTED)
		return 1;
	__u64 now = bpf_ktime_get_ns();
	__u64 *tat = bpf_map_lookup_elem(&miss_share, &in_key);
	if (!tat) {
		__u64 next = now + MISS_SHARE_NS;
		bpf_map_update_elem(&miss_share, &in_key, &next, BPF_ANY);
		return 1;
	}
	__u64 t = *tat;
	if (t < now)
		t = now;
	if (t - now > MISS_SHARE_BURST_NS)
		return 0;
	*tat = t + MISS_SHARE_NS; // racy across CPUs: a share, not an exact count
	return 1;
}

// Anchors the miss record's type in BTF for bpf2go (it is only used
// through a pointer inside the program, which BTF does not describe).
const struct miss *unused_miss __attribute__((unused));

// A miss record's header: what precedes its frame.
#define MISS_HDR __builtin_offsetof(struct miss, data)

static __always_inline void count(__u32 s)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &s);
	if (c)
		*c += 1;
}

// parsed is what the rewrites need besides the key.
struct parsed {
	__u32 l4; // offset of the L4 header; 0: none (not IPv4, or a later fragment)
	__u8 ipv4;
	__u8 vlan;
};

static __always_inline __u8 size_class(__u32 l)
{
	if (l <= 576)
		return 0;
	if (l <= 1280)
		return 1;
	if (l <= 1400)
		return 2;
	if (l <= 1450)
		return 3;
	if (l <= 1500)
		return 4;
	if (l <= 9000)
		return 5;
	return 6;
}

// parse fills k and p the way packet.Decode and agent.keyOf read a frame.
// It returns 0 when the key cannot be computed here (the frame goes to the
// agent without a lookup).
static __always_inline int parse(struct __sk_buff *skb, struct flow_key *k, struct parsed *p)
{
	struct ethhdr eth;
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return 0;
	__builtin_memcpy(k->eth_dst, eth.h_dest, 6);
	__builtin_memcpy(k->eth_src, eth.h_source, 6);
	k->ethertype = bpf_ntohs(eth.h_proto);
	if (skb->vlan_present || k->ethertype == ETH_P_8021Q) {
		p->vlan = 1;
		return 0; // tagged frames are the agent's (the chains drop them)
	}
	if (k->ethertype != ETH_P_IP)
		return 1;

	__u8 ip[20];
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(ip)) < 0)
		return 0;
	if ((ip[0] >> 4) != 4)
		return 0;
	__u32 ihl = (ip[0] & 0x0f) * 4;
	if (ihl < 20)
		return 0;
	p->ipv4 = 1;
	k->tos = ip[1];
	__u32 tot = ((__u32)ip[2] << 8) | ip[3];
	__u16 ff = ((__u16)ip[6] << 8) | ip[7];
	__u16 off = ff & 0x1fff;
	k->frag = (ff & 0x2000) || off;
	k->ttl = ip[8];
	k->proto = ip[9];
	k->src = ((__u32)ip[12] << 24) | ((__u32)ip[13] << 16) | ((__u32)ip[14] << 8) | ip[15];
	k->dst = ((__u32)ip[16] << 24) | ((__u32)ip[17] << 16) | ((__u32)ip[18] << 8) | ip[19];

	__u32 l4 = ETH_HLEN + ihl;
	__u32 iplen = tot;
	if (skb->gso_size) {
		__u32 base = k->proto == IPPROTO_TCP ? 20 : 8;
		iplen = ihl + base + skb->gso_size;
	}
	k->size = size_class(iplen);
	if (off)
		return 1; // later fragments carry no L4 header
	// The L4 header must lie within the IP packet (packet.Decode's bound).
	__u32 end = skb->len;
	if (ETH_HLEN + tot >= l4 && ETH_HLEN + tot < end)
		end = ETH_HLEN + tot;
	__u8 l4h[8];
	switch (k->proto) {
	case IPPROTO_TCP:
		if (end < l4 + 14)
			return 0;
		if (bpf_skb_load_bytes(skb, l4, l4h, 4) < 0)
			return 0;
		k->sport = ((__u16)l4h[0] << 8) | l4h[1];
		k->dport = ((__u16)l4h[2] << 8) | l4h[3];
		p->l4 = l4;
		break;
	case IPPROTO_UDP:
		if (end < l4 + 8)
			return 0;
		if (bpf_skb_load_bytes(skb, l4, l4h, 4) < 0)
			return 0;
		k->sport = ((__u16)l4h[0] << 8) | l4h[1];
		k->dport = ((__u16)l4h[2] << 8) | l4h[3];
		p->l4 = l4;
		break;
	case IPPROTO_ICMP:
		if (end < l4 + 8)
			return 0;
		if (bpf_skb_load_bytes(skb, l4, l4h, 8) < 0)
			return 0;
		k->icmp_type = l4h[0];
		k->icmp_code = l4h[1];
		if (l4h[0] == 0 || l4h[0] == 8) { // echo reply, request: the id is the port
			__u16 id = ((__u16)l4h[4] << 8) | l4h[5];
			k->sport = id;
			k->dport = id;
		}
		p->l4 = l4;
		break;
	}
	return 1;
}

static __always_inline void miss_meta(struct miss *m, struct __sk_buff *skb, struct flow_key *k, __u32 in_key,
				      int looked_up)
{
	m->key = *k;
	m->ifindex = skb->ifindex;
	m->in_key = in_key;
	m->len = skb->len;
	m->gso_size = skb->gso_size;
	m->looked_up = looked_up;
	m->pad = 0;
}

static __always_inline int to_agent(struct __sk_buff *skb, struct flow_key *k, __u32 in_key, int looked_up)
{
	count(STAT_MISS);
	struct miss *m;
	__u32 n = skb->len;
	if (!miss_admitted(in_key))
		goto lost;
	if (n <= MISS_SMALL) {
		// Most misses are the first packet of a flow, and small (a SYN,
		// an ARP, a DNS query): a record of their size rather than the
		// largest lets the ring hold ten times as many while the agent
		// is off the CPU. (Records of MISS_CAP filled 4 MB with fewer
		// than 2,000 SYNs: 40 ms at 50,000 new flows/s.)
		m = bpf_ringbuf_reserve(&misses, MISS_HDR + MISS_SMALL, 0);
		if (!m)
			goto lost;
		miss_meta(m, skb, k, in_key, looked_up);
		m->cap = n;
		if (n < ETH_HLEN || bpf_skb_load_bytes(skb, 0, m->data, n) < 0)
			m->cap = 0;
		bpf_ringbuf_submit(m, 0);
		return TC_ACT_SHOT;
	}
	m = bpf_ringbuf_reserve(&misses, sizeof(*m), 0);
	if (!m)
		goto lost;
	miss_meta(m, skb, k, in_key, looked_up);
	if (n > MISS_CAP)
		n = MISS_CAP;
	m->cap = n;
	if (bpf_skb_load_bytes(skb, 0, m->data, n) < 0)
		m->cap = 0;
	bpf_ringbuf_submit(m, 0);
	return TC_ACT_SHOT;
lost:
	count(STAT_MISS_LOST);
	return TC_ACT_SHOT;
}

static __always_inline void set_ip(struct __sk_buff *skb, struct flow_key *k, struct parsed *p, __u32 off, __u32 to)
{
	__u32 from;
	if (bpf_skb_load_bytes(skb, off, &from, 4) < 0)
		return;
	to = bpf_htonl(to);
	if (p->l4 && k->proto == IPPROTO_TCP)
		bpf_l4_csum_replace(skb, p->l4 + 16, from, to, BPF_F_PSEUDO_HDR | 4);
	else if (p->l4 && k->proto == IPPROTO_UDP)
		bpf_l4_csum_replace(skb, p->l4 + 6, from, to, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
	bpf_l3_csum_replace(skb, ETH_HLEN + 10, from, to, 4);
	bpf_skb_store_bytes(skb, off, &to, 4, 0);
}

// set_port rewrites a TCP/UDP port (at rel 0 or 2) or the ICMP echo id.
static __always_inline void set_port(struct __sk_buff *skb, struct flow_key *k, struct parsed *p, __u32 rel, __u16 port)
{
	if (!p->l4)
		return;
	__u32 off, csum, flags = 2;
	switch (k->proto) {
	case IPPROTO_TCP:
		off = p->l4 + rel;
		csum = p->l4 + 16;
		break;
	case IPPROTO_UDP:
		off = p->l4 + rel;
		csum = p->l4 + 6;
		flags |= BPF_F_MARK_MANGLED_0;
		break;
	case IPPROTO_ICMP:
		if (k->icmp_type != 0 && k->icmp_type != 8)
			return;
		off = p->l4 + 4;
		csum = p->l4 + 2;
		break;
	default:
		return;
	}
	__u16 from;
	if (bpf_skb_load_bytes(skb, off, &from, 2) < 0)
		return;
	__u16 to = bpf_htons(port);
	bpf_l4_csum_replace(skb, csum, from, to, flags);
	bpf_skb_store_bytes(skb, off, &to, 2, 0);
}

static __always_inline void dec_ttl(struct __sk_buff *skb, __u16 n)
{
	__u16 from;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, &from, 2) < 0)
		return;
	__u8 *b = (__u8 *)&from;
	__u8 ttl = b[0];
	if (n > ttl)
		n = ttl;
	__u16 to = from;
	((__u8 *)&to)[0] = ttl - n;
	bpf_l3_csum_replace(skb, ETH_HLEN + 10, from, to, 2);
	bpf_skb_store_bytes(skb, ETH_HLEN + 8, &to, 2, 0);
}

static __always_inline long output(struct __sk_buff *skb, struct action *a, int last)
{
	struct port_val *pv = bpf_map_lookup_elem(&ports, &a->key);
	if (!pv) {
		count(STAT_NO_PORT);
		return -1;
	}
	if (!last)
		return bpf_clone_redirect(skb, pv->ifindex, 0) == 0 ? 0 : -1;
	if (pv->flags & PORT_PEER)
		return bpf_redirect_peer(pv->ifindex, 0);
	return bpf_redirect(pv->ifindex, 0);
}

// clamp_gso shrinks the segment size of a large TCP send so that each
// segment plus the VXLAN encapsulation fits the underlay (agent.clampGSO):
// the receiver takes smaller segments as they come, and the outer packets
// need no fragmentation. adjust_room grows the frame (taking the growth off
// the segment size) and shrinks it back with the segment size fixed.
static __always_inline void clamp_gso(struct __sk_buff *skb, struct flow_key *k, struct parsed *p, __u32 mtu)
{
	if (!mtu || !skb->gso_size || !p->l4 || k->proto != IPPROTO_TCP)
		return;
	__u8 doff;
	if (bpf_skb_load_bytes(skb, p->l4 + 12, &doff, 1) < 0)
		return;
	__u32 hl = p->l4 + (doff >> 4) * 4;
	__u32 room = mtu - 36 - hl; // outer IPv4 + UDP + VXLAN, then the inner headers
	if (mtu < 36 + hl + 256 || room >= skb->gso_size)
		return;
	__s32 diff = skb->gso_size - room;
	if (bpf_skb_adjust_room(skb, diff, BPF_ADJ_ROOM_MAC, 0) < 0)
		return;
	if (bpf_skb_adjust_room(skb, -diff, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		count(STAT_ERROR);
}

static __always_inline long tunnel(struct __sk_buff *skb, struct action *a, int last, struct flow_key *k, struct parsed *p)
{
	__u32 zero = 0;
	struct config *c = bpf_map_lookup_elem(&cfg, &zero);
	if (!c || !c->tunnel_ifindex) {
		count(STAT_ERROR);
		return -1;
	}
	clamp_gso(skb, k, p, c->tunnel_mtu);
	struct bpf_tunnel_key tk = {};
	tk.remote_ipv4 = a->remote;
	tk.tunnel_id = a->key;
	tk.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &tk, sizeof(tk), 0) < 0) {
		count(STAT_ERROR);
		return -1;
	}
	count(STAT_TUNNEL_TX);
	if (!last)
		return bpf_clone_redirect(skb, c->tunnel_ifindex, 0) == 0 ? 0 : -1;
	return bpf_redirect(c->tunnel_ifindex, 0);
}

// run executes an action list; the verdict of its last output, or a drop.
static __always_inline int run(struct __sk_buff *skb, struct flow_val *v, struct flow_key *k, struct parsed *p)
{
	for (int i = 0; i < MAX_ACTS; i++) {
		if (i >= v->n_acts)
			break;
		struct action *a = &v->acts[i];
		int last = a->flags & ACT_LAST_OUT;
		long r;
		switch (a->kind) {
		case ACT_SET_ETH_SRC:
			bpf_skb_store_bytes(skb, 6, a->mac, 6, 0);
			break;
		case ACT_SET_ETH_DST:
			bpf_skb_store_bytes(skb, 0, a->mac, 6, 0);
			break;
		case ACT_SET_IP_SRC:
			if (p->ipv4)
				set_ip(skb, k, p, ETH_HLEN + 12, a->ip);
			break;
		case ACT_SET_IP_DST:
			if (p->ipv4)
				set_ip(skb, k, p, ETH_HLEN + 16, a->ip);
			break;
		case ACT_SET_SRC_PORT:
			set_port(skb, k, p, 0, a->port);
			break;
		case ACT_SET_DST_PORT:
			set_port(skb, k, p, 2, a->port);
			break;
		case ACT_DEC_TTL:
			if (p->ipv4)
				dec_ttl(skb, a->port);
			break;
		case ACT_OUTPUT:
			r = output(skb, a, last);
			if (last)
				return r < 0 ? TC_ACT_SHOT : r;
			break;
		case ACT_TUNNEL:
			r = tunnel(skb, a, last, k, p);
			if (last)
				return r < 0 ? TC_ACT_SHOT : r;
			break;
		default: // drop; userspace flows are never written here
			count(STAT_DROP);
			return TC_ACT_SHOT;
		}
	}
	return TC_ACT_SHOT;
}

static __always_inline int from_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key tk = {};
	if (bpf_skb_get_tunnel_key(skb, &tk, sizeof(tk), 0) < 0) {
		count(STAT_ERROR);
		return TC_ACT_SHOT;
	}
	__u32 vni = tk.tunnel_id;
	if (vni == STATE_VNI) {
		// Connection state and heartbeats for the agent's packet sockets.
		// Their inner source MAC is unused (zero): it carries the sender's
		// underlay address, which a packet socket cannot see.
		__u8 src[6] = {};
		__u32 ip = bpf_htonl(tk.remote_ipv4);
		__builtin_memcpy(src, &ip, 4);
		bpf_skb_store_bytes(skb, 6, src, 6, 0);
		return TC_ACT_OK;
	}
	count(STAT_TUNNEL_RX);
	struct port_val *pv = bpf_map_lookup_elem(&ports, &vni);
	if (!pv) {
		// No kernel port has the key: the agent delivers it (a port it
		// serves in userspace) or counts it as unknown.
		count(STAT_TUNNEL_UNKNOWN);
		struct flow_key k;
		__builtin_memset(&k, 0, sizeof(k));
		return to_agent(skb, &k, vni, 0);
	}
	if (pv->flags & PORT_PEER)
		return bpf_redirect_peer(pv->ifindex, 0);
	return bpf_redirect(pv->ifindex, 0);
}

// larger_class finds the forwarding flow of the same key for larger
// packets. What the simulation decides does not depend on a packet's length
// except at routers' MTU checks, and a packet that passed them passes them
// smaller: so a segment shorter than the connection's usual ones (the tail
// of a write, an application's last message) takes its flow without a trip
// to the agent — also while there is no agent (it was killed and restarts).
// A drop flow is never borrowed: a packet too big for a link is dropped
// where a smaller one would pass.
static __always_inline struct flow_val *larger_class(struct flow_key *k)
{
	__u8 size = k->size;
	struct flow_val *v = 0;
	for (__u8 s = 1; s <= 6; s++) {
		if (s <= size)
			continue;
		k->size = s;
		v = bpf_map_lookup_elem(&flows, k);
		if (v && !(v->flags & FLOW_DROP))
			break;
		v = 0;
	}
	k->size = size;
	return v;
}

SEC("tc")
int canopy_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct dev_val *d = bpf_map_lookup_elem(&devs, &ifindex);
	if (!d)
		return TC_ACT_OK; // not a device of Canopy's
	if (d->kind == DEV_TUNNEL)
		return from_tunnel(skb);

	struct flow_key k;
	struct parsed p;
	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memset(&p, 0, sizeof(p));
	int ok = parse(skb, &k, &p);

	if (d->kind == DEV_INJECT) {
		__u32 mark = skb->mark;
		if ((mark & 0xf0000000u) != INJECT_MARK)
			return TC_ACT_SHOT;
		__u32 slot = mark & (INJECT_SLOTS - 1);
		skb->mark = 0;
		struct flow_val *v = bpf_map_lookup_elem(&inject, &slot);
		if (!v)
			return TC_ACT_SHOT;
		count(STAT_INJECT);
		return run(skb, v, &k, &p);
	}

	k.in_key = d->key;
	if (!ok)
		return to_agent(skb, &k, d->key, 0);
	struct flow_val *v = bpf_map_lookup_elem(&flows, &k);
	if (!v)
		v = larger_class(&k);
	if (!v)
		return to_agent(skb, &k, d->key, 1);
	count(STAT_HIT);
	v->used_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, skb->len);
	if (v->flags & FLOW_DROP) {
		count(STAT_DROP);
		return TC_ACT_SHOT;
	}
	return run(skb, v, &k, &p);
}

char __license[] SEC("license") = "Dual MIT/GPL";
