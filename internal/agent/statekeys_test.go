package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
)

// TestNewStateInvalidatesEarlyReplies: a reply that was forwarded (not
// dropped) before its connection's state existed — passed untranslated by a
// rev_dnat that found nothing — is cached with the tag of the reply key.
// When the state appears, made by a local simulation or imported from a
// peer, that flow goes, and flows of other connections stay.
func TestNewStateInvalidatesEarlyReplies(t *testing.T) {
	conn := packet.Key{Zone: 9, Src: 0x0a000002, Dst: 0xc000020a, SrcPort: 40000, DstPort: 7000, Proto: packet.ProtoUDP}
	nat := sim.NATEntry{Kind: flow.DNAT, Key: conn, Binding: flow.Binding{IP: 0x0a010102, Port: 7000}}
	res := &sim.Result{Conns: []packet.Key{conn}, NATs: []sim.NATEntry{nat}}
	replyTag := flow.KeyTag(flow.ReplyKey(nat.Kind, nat.Key, nat.Binding))
	other := conn
	other.SrcPort++
	otherTag := flow.KeyTag(flow.ReplyKey(nat.Kind, other, nat.Binding))

	for _, how := range []string{"imported", "made here"} {
		a, err := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixNano()
		early := &flow.Entry{Key: flow.Key{In: 1, Tuple: packet.Key{Src: 1}}, Tags: []flow.Tag{replyTag}, Expires: now + int64(time.Minute)}
		unrelated := &flow.Entry{Key: flow.Key{In: 1, Tuple: packet.Key{Src: 2}}, Tags: []flow.Tag{otherTag}, Expires: now + int64(time.Minute)}
		a.flows.Install(early, a.flows.Gen())
		a.flows.Install(unrelated, a.flows.Gen())
		if how == "imported" {
			a.importState(encodeState(res, time.Hour))
		} else {
			a.invalidateNewState(res)
		}
		if a.flows.Lookup(&early.Key, now) != nil {
			t.Errorf("%s: the early reply's flow survived its NAT entry", how)
		}
		if a.flows.Lookup(&unrelated.Key, now) == nil {
			t.Errorf("%s: another connection's flow was invalidated", how)
		}
	}
}
