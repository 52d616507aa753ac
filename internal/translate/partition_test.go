package translate

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestPartitionsUnion: the cloud partition plus every VPC's partition is
// Translate, object for object, and each partition holds only its own
// objects.
func TestPartitionsUnion(t *testing.T) {
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			st := mk()
			full := Translate(st, cloud())
			got := map[topology.ObjectKey]topology.Object{}
			add := func(part string, d *Desired) {
				for _, o := range d.Objects {
					if Partition(o) != part {
						t.Errorf("partition %q holds %s labelled %q", part, topology.Key(o), Partition(o))
					}
					if _, dup := got[topology.Key(o)]; dup {
						t.Errorf("%s in two partitions", topology.Key(o))
					}
					got[topology.Key(o)] = o
				}
			}
			add("", TranslateCloud(cloud(), []*topology.Host{{Meta: topology.Meta{ID: gwHost, Name: "gw"}}}))
			skips := 0
			for id := range st.Vpcs {
				d := TranslateVPC(st, cloud(), id)
				add(id, d)
				skips += len(d.Skipped)
			}
			if len(got) != len(full.Objects) {
				t.Errorf("partitions hold %d objects, Translate %d", len(got), len(full.Objects))
			}
			for _, o := range full.Objects {
				p, ok := got[topology.Key(o)]
				if !ok {
					t.Errorf("%s (%s) missing from the partitions", topology.Key(o), o.GetMeta().Name)
					continue
				}
				a, _ := json.Marshal(o)
				b, _ := json.Marshal(p)
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs:\n full %s\n part %s", topology.Key(o), a, b)
				}
			}
			if skips != len(full.Skipped) {
				t.Errorf("partitions skipped %d objects, Translate %d", skips, len(full.Skipped))
			}
		})
	}
	if d := TranslateVPC(cases["vpc"](), cloud(), "vpc-00000000000000000"); len(d.Objects) != 0 {
		t.Errorf("an unknown VPC has %d objects", len(d.Objects))
	}
}
