package ec2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// FuzzParams feeds arbitrary query strings and form bodies through the
// request parser and every parameter reader the actions use (filters,
// member lists, tag specifications, IP permissions, pagination): none may
// panic, and what they return must be consistent. Crashers found are kept
// in testdata/fuzz/FuzzParams.
func FuzzParams(f *testing.F) {
	for _, s := range [][2]string{
		{"", "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=foo"},
		{"Action=DescribeVpcs", "MaxResults=5&Filter.2.Name=cidr-block&Filter.2.Value.1=10.0.0.0%2F16&NextToken=YWZ0ZXI6dnBjLTE"},
		{"", "TagSpecification.1.ResourceType=vpc&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=t1"},
		{"", "IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0&IpPermissions.1.IpRanges.1.Description=ssh&IpPermissions.1.Groups.1.GroupName=web"},
		{"", "VpcId.1=vpc-1&VpcId.3=vpc-3&VpcId.x=1&VpcId.-1=2&VpcId.99999999999999999999=3&Filter.1.Value.0=a"},
		{"", "IpProtocol=-1&CidrIp=10.0.0.0%2F8&SourceSecurityGroupName=g"},
		{"a=%zz", "b=%"},
		{"", "Filter..Name=x&Filter.1..Value=y&Tag.1.Key=aws%3Ax&DryRun=TRUE&MaxResults=1e3"},
	} {
		f.Add(s[0], s[1])
	}
	sg := &vpc.SecurityGroup{ID: "sg-1", OwnerID: "1", VpcID: "vpc-1"}
	st := vpc.NewState()
	st.SecurityGroups["sg-2"] = &vpc.SecurityGroup{ID: "sg-2", OwnerID: "1", VpcID: "vpc-1", GroupName: "web"}
	f.Fuzz(func(t *testing.T, query, body string) {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/", RawQuery: query}}
		p, err := parseParams(r, []byte(body))
		if err != nil {
			return
		}
		for _, prefix := range []string{"Filter", "VpcId", "TagSpecification", "IpPermissions", "Tag"} {
			idx := p.indexes(prefix)
			if !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != len(idx) {
				t.Fatalf("indexes(%s) = %v", prefix, idx)
			}
			for _, n := range idx {
				if n <= 0 {
					t.Fatalf("index %d of %s", n, prefix)
				}
				for k := range p.sub(prefix, n) {
					if !p.has(prefix + "." + strconv.Itoa(n) + "." + k) {
						t.Fatalf("sub(%s, %d) invented %q", prefix, n, k)
					}
				}
			}
			if got := p.list(prefix); len(got) != len(idx) {
				t.Fatalf("list(%s): %d values for %d indexes", prefix, len(got), len(idx))
			}
			// Nothing accepted is dropped: every prefix.N… sent is read
			// as one of the indexes.
			for k := range p {
				rest, ok := strings.CutPrefix(k, prefix+".")
				if !ok || (rest != "" && 'a' <= rest[0]|0x20 && rest[0]|0x20 <= 'z') {
					continue
				}
				num, _, _ := strings.Cut(rest, ".")
				if n, err := strconv.Atoi(num); err != nil || strconv.Itoa(n) != num || !slices.Contains(idx, n) {
					t.Fatalf("parameter %s accepted but not among the indexes %v of %s", k, idx, prefix)
				}
			}
		}
		known := fields{"vpc-id": nil, "cidr-block": nil, "state": nil}
		if fs, err := parseFilters(p, known); err == nil {
			_ = matches(fs, fields{"vpc-id": {"vpc-1"}, "cidr-block": {"10.0.0.0/16"}}, vpc.Tags{"Name": "x"})
		}
		_, _ = p.tagSpecs("vpc")
		_, _ = p.tags("Tag")
		_, _ = p.boolean("DryRun", false)
		_, _ = p.optBool("EnableDnsSupport.Value")
		_, _ = p.integer("MaxResults", 0)
		_, _ = p.cidr("CidrBlock")
		ids := []string{"vpc-1", "vpc-2", "vpc-3", "vpc-4", "vpc-5", "vpc-6", "vpc-7"}
		if lo, hi, next, err := paginate(p, ids, 1000); err == nil {
			if lo < 0 || lo > hi || hi > len(ids) || (next != "") != (hi < len(ids)) {
				t.Fatalf("paginate: lo %d hi %d next %q", lo, hi, next)
			}
		}
		c := &call{ctx: context.Background(), p: p, acct: "1"}
		for _, egress := range []bool{false, true} {
			rules, err := permissions(c, st, sg, egress)
			if err == nil && len(rules) == 0 {
				t.Fatal("permissions: no rules and no error")
			}
			if err == nil {
				_ = vpc.CheckAddRules(st, sg, rules, vpc.Limits{}.WithDefaults())
			}
		}
	})
}

// FuzzParseAuthorization: arbitrary Authorization headers never panic the
// parser, and what it accepts has every part.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5326")
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=, Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,=,==")
	f.Add("AWS AKID:sig")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseAuthorization(h)
		if err != nil {
			return
		}
		if p.accessKey == "" || p.signedHeaders == "" || p.signature == "" {
			t.Fatalf("accepted %q with an empty part: %+v", h, p)
		}
	})
}

// FuzzVerify mutates a correctly signed request's Authorization header,
// X-Amz-Date and body and runs the whole SigV4 check against a real store:
// it never panics, and nothing but the original body, date and credential
// ever verifies (whitespace in the header aside).
func FuzzVerify(f *testing.F) {
	s, _ := nsdbtest.OpenEmbedded(f)
	ctx := context.Background()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(vs.Close)
	now := time.Date(2026, 11, 22, 1, 31, 0, 0, time.UTC)
	srv, err := New(vs, Config{Key: make([]byte, 32), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	nc, err := srv.CreateAccount(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	const body = "Action=DescribeVpcs&Version=2016-11-15"
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8788/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: nc.AccessKeyID, SecretAccessKey: nc.SecretAccessKey}, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", now); err != nil {
		f.Fatal(err)
	}
	auth, date := req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date")
	f.Add(auth, date, body)
	f.Add(strings.Replace(auth, "ec2", "sts", 1), date, body)
	f.Add(auth, "20261122T013100", body+"&")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIA/20261122/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00", date, "")
	f.Fuzz(func(t *testing.T, a, d, b string) {
		r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8788/", bytes.NewReader([]byte(b)))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		r.Header.Set("Authorization", a)
		r.Header.Set("X-Amz-Date", d)
		cred, err := srv.verify(ctx, r, []byte(b), serviceEC2)
		if err != nil {
			return
		}
		if b != body || d != date || cred.AccountID != nc.AccountID {
			t.Fatalf("forged request verified: auth %q date %q body %q", a, d, b)
		}
	})
}

// TestParamsBounded: a request of many tiny parameters is refused before
// the member-list readers, whose cost is parameters × members, see it.
func TestParamsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("Action=DescribeVpcs")
	for i := 1; i <= maxParams; i++ {
		b.WriteString("&Filter." + strconv.Itoa(i) + ".Name=vpc-id")
	}
	r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/"}}
	if _, err := parseParams(r, []byte(b.String())); err == nil {
		t.Fatalf("%d parameters accepted", maxParams+1)
	}
	if _, err := parseParams(r, []byte(strings.Replace(b.String(), "&Filter.1.Name=vpc-id", "", 1))); err != nil {
		t.Fatalf("%d parameters refused: %v", maxParams, err)
	}
}
