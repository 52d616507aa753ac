package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestBadTextAndZeroMAC: arguments that are not UTF-8 are refused before
// any request (the URL here answers nothing, so a request would fail
// differently), and a typed zero MAC is an error, not "no MAC".
func TestBadTextAndZeroMAC(t *testing.T) {
	for _, args := range [][]string{
		{"router", "create", "r\xff"},
		{"bridge", "create", "b", "--label", "k=\xc3\x28"},
	} {
		var out, errOut bytes.Buffer
		root := NewRoot(&out, &errOut)
		root.SetArgs(append(args, "--url", "http://127.0.0.1:1", "--token", "x"))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%q: %v", args, err)
		}
	}
	for mac, want := range map[string]string{
		"00:00:00:00:00:00": "not an address a port or host can have",
		"00-00-00-00-00-00": "not an address a port or host can have",
		"02:00:00:00:00:01": "",
	} {
		_, err := hostMAC(mac)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", mac, err, want)
		}
	}
}
