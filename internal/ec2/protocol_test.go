package ec2

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestParamsValidate: parameters the accessors would misread silently are
// refused with InvalidParameterValue before any action runs.
func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{"Action=DescribeVpcs&VpcId.1=vpc-1&VpcId.2=vpc-2", true},
		{"Filter.1.Name=tag%3AName&Filter.1.Value.1=web&Filter.10.Value.2147483647=x", true},
		{"IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0&TagSpecification.1.Tag.1.Value=caf%C3%A9", true},
		{"VpcId.x=1", true}, // a member name, unknown: ignored like any unknown parameter
		{"VpcId.99999999999999999999=vpc-1", false},
		{"VpcId.2147483648=vpc-1", false},
		{"VpcId.0=vpc-1", false},
		{"VpcId.-1=vpc-1", false},
		{"VpcId.%2B1=vpc-1", false},
		{"VpcId.+1=vpc-1", false}, // "VpcId. 1"
		{"Filter..Name=x", false},
		{"VpcId.=x", false},
		{"VpcId.01=vpc-1", false}, // would read as VpcId.1
		{"VpcId.1a=vpc-1", false},
		{"Filter.1.Value.99999999999999999999=a", false},
		{"GroupName=%FF", false},
		{"TagSpecification.1.Tag.1.Value=%C3%28", false},
		{"Name%FF=x", false},
	} {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/"}}
		_, err := parseParams(r, []byte(tc.body))
		var ve *vpc.Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case !tc.ok && (!errors.As(err, &ve) || ve.Code != vpc.CodeInvalidParameterValue):
			t.Errorf("%s: got %v, want InvalidParameterValue", tc.body, err)
		}
	}
}
