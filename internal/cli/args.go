package cli

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// checkText refuses arguments and flag values that are not UTF-8: JSON
// encoding would turn their bad bytes into U+FFFD, and the server would
// store a name other than the one typed.
func checkText(cmd *cobra.Command, args []string) error {
	for i, a := range args {
		if !utf8.ValidString(a) {
			return fmt.Errorf("argument %d (%q) is not valid UTF-8", i+1, a)
		}
	}
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if err == nil && !utf8.ValidString(f.Value.String()) {
			err = fmt.Errorf("--%s %q is not valid UTF-8", f.Name, f.Value.String())
		}
	})
	return err
}

// hostMAC parses the MAC of a port or a DHCP host. The all-zero MAC means
// "none" in the topology, so typed explicitly it would silently be dropped.
func hostMAC(s string) (topology.MAC, error) {
	m, err := topology.ParseMAC(s)
	if err == nil && m.IsZero() {
		return m, errors.New("00:00:00:00:00:00 is not an address a port or host can have; leave --mac out for none")
	}
	return m, err
}
