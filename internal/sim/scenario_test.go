package sim

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/*.txtar")

// Scenario files (testdata/*.txtar) hold three sections:
//
//	-- topology.json --  a JSON array of objects, each with its "kind"
//	-- packets --        one packet per line (see parsePacket); between
//	                     packets learned entries are applied and time advances
//	-- want --           the formatted result of every packet, with its trace
//
// go test ./internal/sim -run TestScenarios -update rewrites the want sections.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			comment, sections := parseTxtar(data)
			x := loadTopology(t, sections["topology.json"])
			snap := NewSnapshot(x)
			st := flow.NewState()
			opts := Options{Now: 1e9, LocalHost: "h1", Tables: NewTables(), Trace: true}
			var got strings.Builder
			var res Result
			for i, line := range strings.Split(strings.TrimSpace(sections["packets"]), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				in, frame, err := parsePacket(line)
				if err != nil {
					t.Fatalf("packet %d: %v", i+1, err)
				}
				var p packet.Packet
				p.Decode(frame)
				Simulate(snap, st, in, frame, &p, &opts, &res)
				fmt.Fprintf(&got, "== %s\n%s", line, FormatResult(&res))
				opts.Tables.Learn(res.Learned, 1<<62)
				opts.Now += 1e9
			}
			if *update {
				sections["want"] = got.String()
				if err := os.WriteFile(file, formatTxtar(comment, sections), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := sections["want"]; got.String() != want {
				t.Errorf("%s: result differs (run with -update to accept)\n--- got\n%s\n--- want\n%s", file, got.String(), want)
			}
		})
	}
}

var sectionOrder = []string{"topology.json", "packets", "want"}

func parseTxtar(data []byte) (string, map[string]string) {
	sections := map[string]string{}
	var comment bytes.Buffer
	cur := ""
	var buf bytes.Buffer
	flush := func() {
		if cur != "" {
			sections[cur] = buf.String()
		}
		buf.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(trim, "-- "), " --")
			continue
		}
		if cur == "" {
			comment.WriteString(line)
		} else {
			buf.WriteString(line)
		}
	}
	flush()
	return comment.String(), sections
}

func formatTxtar(comment string, sections map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(comment)
	for _, name := range sectionOrder {
		fmt.Fprintf(&b, "-- %s --\n", name)
		s := sections[name]
		b.WriteString(s)
		if s != "" && !strings.HasSuffix(s, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func loadTopology(t *testing.T, js string) *topology.Index {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(js), &raws); err != nil {
		t.Fatalf("topology: %v", err)
	}
	x := topology.NewIndex()
	for _, raw := range raws {
		var k struct{ Kind topology.Kind }
		if err := json.Unmarshal(raw, &k); err != nil {
			t.Fatal(err)
		}
		o := topology.New(k.Kind)
		if o == nil {
			t.Fatalf("unknown kind %q", k.Kind)
		}
		if err := json.Unmarshal(raw, o); err != nil {
			t.Fatalf("%s: %v", k.Kind, err)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("%s %s: %v", k.Kind, o.GetMeta().ID, err)
		}
		x.Put(o)
	}
	return x
}

// parsePacket reads one packet line:
//
//	in PORT tcp|udp SRCMAC > DSTMAC SRCIP:PORT > DSTIP:PORT [ttl N] [df] [syn]
//	in PORT ping    SRCMAC > DSTMAC SRCIP > DSTIP id N [ttl N]
//	in PORT arp-request SRCMAC SENDERIP > TARGETIP
//	in PORT arp-reply   SRCMAC SENDERIP > DSTMAC TARGETIP
func parsePacket(line string) (string, []byte, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "in" {
		return "", nil, fmt.Errorf("want \"in PORT KIND ...\": %q", line)
	}
	in, kind, rest := f[1], f[2], f[3:]
	mac := func(s string) ([6]byte, error) { m, err := topology.ParseMAC(s); return m, err }
	addr := func(s string) (uint32, error) {
		a, err := netip.ParseAddr(s)
		return packet.U32(a), err
	}
	hostPort := func(s string) (uint32, uint16, error) {
		ap, err := netip.ParseAddrPort(s)
		return packet.U32(ap.Addr()), ap.Port(), err
	}
	var err error
	must := func(e error) {
		if err == nil {
			err = e
		}
	}
	switch kind {
	case "tcp", "udp", "ping":
		if len(rest) < 6 || rest[1] != ">" || rest[4] != ">" {
			return "", nil, fmt.Errorf("bad %s line %q", kind, line)
		}
		var s packet.Spec
		s.EthSrc, err = mac(rest[0])
		m, e := mac(rest[2])
		must(e)
		s.EthDst = m
		if kind == "ping" {
			s.Proto, s.ICMPType, s.Payload = packet.ProtoICMP, packet.ICMPEchoRequest, []byte("ping")
			s.Src, e = addr(rest[3])
			must(e)
			s.Dst, e = addr(rest[5])
			must(e)
		} else {
			s.Proto, s.Payload = packet.ProtoUDP, []byte("data")
			if kind == "tcp" {
				s.Proto = packet.ProtoTCP
			}
			s.Src, s.SrcPort, e = hostPort(rest[3])
			must(e)
			s.Dst, s.DstPort, e = hostPort(rest[5])
			must(e)
		}
		opts := rest[6:]
		for i := 0; i < len(opts); i++ {
			switch opts[i] {
			case "df":
				s.DF = true
			case "syn":
				s.TCPFlags |= 0x02
			case "ttl", "id", "size":
				if i+1 >= len(opts) {
					return "", nil, fmt.Errorf("%s needs a value", opts[i])
				}
				v, e := strconv.Atoi(opts[i+1])
				must(e)
				switch opts[i] {
				case "ttl":
					s.TTL = uint8(v)
				case "id":
					s.SrcPort = uint16(v)
				case "size":
					s.Payload = make([]byte, v)
				}
				i++
			default:
				return "", nil, fmt.Errorf("unknown option %q", opts[i])
			}
		}
		return in, s.Build(), err
	case "arp-request":
		if len(rest) != 4 || rest[2] != ">" {
			return "", nil, fmt.Errorf("bad arp-request %q", line)
		}
		sha, e := mac(rest[0])
		must(e)
		spa, e := addr(rest[1])
		must(e)
		tpa, e := addr(rest[3])
		must(e)
		return in, packet.BuildARP(packet.ARPRequest, sha, spa, [6]byte{}, tpa), err
	case "arp-reply":
		if len(rest) != 5 || rest[2] != ">" {
			return "", nil, fmt.Errorf("bad arp-reply %q", line)
		}
		sha, e := mac(rest[0])
		must(e)
		spa, e := addr(rest[1])
		must(e)
		tha, e := mac(rest[3])
		must(e)
		tpa, e := addr(rest[4])
		must(e)
		return in, packet.BuildARP(packet.ARPReply, sha, spa, tha, tpa), err
	}
	return "", nil, fmt.Errorf("unknown packet kind %q", kind)
}
