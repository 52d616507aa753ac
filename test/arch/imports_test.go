// Package arch enforces the layering of DESIGN.md §2 on the real import
// graph: the pure core does no I/O, and the agent does not pull in the
// servers.
package arch

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The pure core: packages that model and compute, with no I/O and no
// goroutines. Their subpackages belong to the core too, except test helpers
// (xxxtest) and fakes (xxxfake), which only tests import.
var core = []string{
	"internal/topology",
	"internal/vpc",
	"internal/sim",
	"internal/packet",
	"internal/flow",
	"internal/translate",
	"internal/reach",
}

// independent lists, per package, what it must not depend on even
// indirectly: internal/reach is the model the data path is compared with,
// so it shares none of the data path's code.
var independent = map[string][]string{
	"internal/reach": {"internal/translate", "internal/sim", "internal/packet", "internal/flow", "internal/topology"},
}

// extraAllowed lists the third-party packages a core package may import.
var extraAllowed = map[string][]string{
	"internal/packet": {
		"gvisor.dev/gvisor/pkg/tcpip/header",
		"gvisor.dev/gvisor/pkg/tcpip/checksum",
	},
}

// forbiddenStd are standard-library packages that mean I/O, processes or
// system calls. A prefix ending in "/" forbids the whole tree.
var forbiddenStd = []string{"os", "os/", "net/http", "net/http/", "net/rpc", "syscall", "plugin"}

// agentMustNotReach are the server-side packages the agent must not depend
// on, even indirectly.
var agentMustNotReach = []string{"internal/api", "internal/ec2", "internal/controller"}

// apiMustNotReach: the API packages only read and record intent; every
// reconciler is the controller's, which runs under the leader lease (one
// owner per state, STYLE.md).
var apiMustNotReach = map[string][]string{
	"internal/ec2": {"internal/controller"},
	"internal/api": {"internal/controller"},
}

// cliMustNotImport are the role pieces the command line reaches only through
// internal/role, the composition root: the CLI parses, prints and speaks
// HTTP; it builds no role itself (issue 13).
var cliMustNotImport = []string{"internal/agent", "internal/controller", "internal/nsdb", "internal/instance",
	"internal/ec2", "internal/api", "internal/server", "internal/upstream", "internal/datapath", "internal/gateway",
	"internal/fastpath", "internal/metadata"}

// pkg is the part of `go list -json` output the rules need.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Standard   bool
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

func TestImportRules(t *testing.T) {
	root, module := moduleRoot(t)
	cmd := exec.Command("go", "list", "-e", "-deps", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs, err := decode(out)
	if err != nil {
		t.Fatalf("decoding go list output: %v", err)
	}
	var checked int
	for _, p := range pkgs {
		if isCore(module, p.ImportPath) || under(module, p.ImportPath, "internal/agent") {
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("no core or agent package found under %s: the rules checked nothing", module)
	}
	for _, v := range violations(module, pkgs) {
		t.Error(v)
	}
	for _, p := range pkgs {
		if isCore(module, p.ImportPath) {
			for _, v := range goStatements(p) {
				t.Error(v)
			}
		}
	}
}

// goStatements lists the go statements in a core package's non-test files:
// the pure core starts no goroutines (DESIGN.md §2).
func goStatements(p pkg) []string {
	var out []string
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
		if err != nil {
			out = append(out, p.ImportPath+": "+err.Error())
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				out = append(out, fset.Position(g.Pos()).String()+": a go statement in the pure core (DESIGN.md §2)")
			}
			return true
		})
	}
	return out
}

// violations applies the rules to a package list and describes each breach.
func violations(module string, pkgs []pkg) []string {
	std := map[string]bool{}
	for _, p := range pkgs {
		if p.Standard {
			std[p.ImportPath] = true
		}
	}
	var out []string
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		if isCore(module, p.ImportPath) {
			if p.Error != nil {
				out = append(out, rel+": go list error, imports unknown: "+p.Error.Err)
			}
			for _, imp := range p.Imports {
				if why := coreImportBreach(module, rel, imp, std[imp]); why != "" {
					out = append(out, rel+" imports "+imp+": "+why)
				}
			}
		}
		for pkgRel, bad := range independent {
			if !under(module, p.ImportPath, pkgRel) {
				continue
			}
			for _, dep := range p.Deps {
				for _, b := range bad {
					if under(module, dep, b) {
						out = append(out, rel+" depends on "+dep+": an independent model shares no code with "+b)
					}
				}
			}
		}
		if !under(module, p.ImportPath, "internal/nsdb") {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, "go.etcd.io/etcd/") {
					out = append(out, rel+" imports "+imp+": only internal/nsdb talks to etcd and knows its keys (STYLE.md: one place knows the keys)")
				}
			}
		}
		for api, bad := range apiMustNotReach {
			if !under(module, p.ImportPath, api) {
				continue
			}
			for _, dep := range p.Deps {
				for _, b := range bad {
					if under(module, dep, b) {
						out = append(out, rel+" depends on "+dep+": an API handler records intent, the reconcilers are the controller's (STYLE.md: one owner per state)")
					}
				}
			}
		}
		if under(module, p.ImportPath, "internal/cli") {
			for _, imp := range p.Imports {
				for _, bad := range cliMustNotImport {
					if under(module, imp, bad) {
						out = append(out, rel+" imports "+imp+": the CLI reaches the roles only through internal/role")
					}
				}
			}
		}
		if under(module, p.ImportPath, "internal/agent") {
			for _, dep := range p.Deps {
				for _, bad := range agentMustNotReach {
					if under(module, dep, bad) {
						out = append(out, rel+" depends on "+dep+": the agent must not depend on "+bad+" (DESIGN.md §2)")
					}
				}
			}
		}
	}
	return out
}

// coreImportBreach says why core package rel may not import imp, or "".
func coreImportBreach(module, rel, imp string, standard bool) string {
	switch {
	case standard:
		for _, f := range forbiddenStd {
			if imp == f || strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f) {
				return "a pure core package does no I/O (DESIGN.md §2)"
			}
		}
		return ""
	case strings.HasPrefix(imp, module+"/"):
		if isCore(module, imp) {
			return ""
		}
		return "a pure core package imports only the standard library and other core packages (DESIGN.md §2)"
	}
	for pre, allowed := range extraAllowed {
		if (rel == pre || strings.HasPrefix(rel, pre+"/")) && slices.Contains(allowed, imp) {
			return ""
		}
	}
	return "third-party package not allowed in the pure core (DESIGN.md §2)"
}

// isCore reports whether path is a core package or a subpackage of one that
// is not a test helper.
func isCore(module, path string) bool {
	last := path[strings.LastIndex(path, "/")+1:]
	if strings.HasSuffix(last, "test") || strings.HasSuffix(last, "fake") {
		return false
	}
	for _, c := range core {
		if under(module, path, c) {
			return true
		}
	}
	return false
}

// under reports whether path is module/rel or below it.
func under(module, path, rel string) bool {
	base := module + "/" + rel
	return path == base || strings.HasPrefix(path, base+"/")
}

func decode(b []byte) ([]pkg, error) {
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
}

func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}\n{{.Path}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("go list -m printed %q", out)
	}
	return filepath.Clean(lines[0]), lines[1]
}

// TestRulesCatchBreaches feeds the rule checker import graphs that break each
// rule, so a checker that silently accepts everything fails here.
func TestRulesCatchBreaches(t *testing.T) {
	const m = "example.com/c"
	std := func(paths ...string) []pkg {
		var ps []pkg
		for _, p := range paths {
			ps = append(ps, pkg{ImportPath: p, Standard: true})
		}
		return ps
	}
	base := std("fmt", "net/netip", "os", "os/exec", "net/http", "net/http/httptest", "syscall", "sort")
	cases := []struct {
		name string
		pkgs []pkg
		want []string // substrings, one per expected violation; none = clean
	}{
		{"clean core", []pkg{
			{ImportPath: m + "/internal/topology", Imports: []string{"fmt", "net/netip"}},
			{ImportPath: m + "/internal/sim", Imports: []string{"sort", m + "/internal/topology", m + "/internal/packet"}},
			{ImportPath: m + "/internal/packet", Imports: []string{"gvisor.dev/gvisor/pkg/tcpip/header", "gvisor.dev/gvisor/pkg/tcpip/checksum"}},
			{ImportPath: m + "/internal/sim/simtest", Imports: []string{"os", "testing"}},
			{ImportPath: m + "/internal/nsdb", Imports: []string{"os", "net/http", m + "/internal/topology"}},
			{ImportPath: m + "/internal/agent", Imports: []string{m + "/internal/sim"}, Deps: []string{m + "/internal/sim", m + "/internal/topology"}},
		}, nil},
		{"topology imports net/http", []pkg{
			{ImportPath: m + "/internal/topology", Imports: []string{"fmt", "net/http"}},
		}, []string{"internal/topology imports net/http: a pure core package does no I/O"}},
		{"flow imports os, os/exec, syscall, httptest", []pkg{
			{ImportPath: m + "/internal/flow", Imports: []string{"os", "os/exec", "syscall", "net/http/httptest"}},
		}, []string{"imports os:", "imports os/exec:", "imports syscall:", "imports net/http/httptest:"}},
		{"core subpackage imports os", []pkg{
			{ImportPath: m + "/internal/sim/trace", Imports: []string{"os"}},
		}, []string{"internal/sim/trace imports os"}},
		{"translate imports nsdb", []pkg{
			{ImportPath: m + "/internal/translate", Imports: []string{m + "/internal/vpc", m + "/internal/nsdb"}},
		}, []string{"internal/translate imports " + m + "/internal/nsdb: a pure core package imports only"}},
		{"core imports a test helper", []pkg{
			{ImportPath: m + "/internal/sim", Imports: []string{m + "/internal/sim/simtest"}},
		}, []string{"imports " + m + "/internal/sim/simtest"}},
		{"gvisor outside packet", []pkg{
			{ImportPath: m + "/internal/flow", Imports: []string{"gvisor.dev/gvisor/pkg/tcpip/header"}},
		}, []string{"third-party package not allowed"}},
		{"other gvisor in packet", []pkg{
			{ImportPath: m + "/internal/packet", Imports: []string{"gvisor.dev/gvisor/pkg/tcpip/stack"}},
		}, []string{"internal/packet imports gvisor.dev/gvisor/pkg/tcpip/stack"}},
		{"broken core package", []pkg{
			{ImportPath: m + "/internal/vpc", Error: &struct{ Err string }{"no Go files"}},
		}, []string{"internal/vpc: go list error"}},
		{"etcd outside nsdb", []pkg{
			{ImportPath: m + "/internal/ec2", Imports: []string{"go.etcd.io/etcd/client/v3"}},
			{ImportPath: m + "/bench/controller", Imports: []string{"go.etcd.io/etcd/client/v3/concurrency"}},
			{ImportPath: m + "/internal/nsdb/nsdbtest", Imports: []string{"go.etcd.io/etcd/client/v3"}},
		}, []string{"internal/ec2 imports go.etcd.io/etcd/client/v3: only internal/nsdb", "bench/controller imports go.etcd.io/etcd/client/v3/concurrency"}},
		{"agent reaches the API indirectly", []pkg{
			{ImportPath: m + "/internal/agent/svc", Imports: []string{m + "/internal/util"}, Deps: []string{m + "/internal/util", m + "/internal/api/types"}},
		}, []string{"internal/agent/svc depends on " + m + "/internal/api/types"}},
		{"the model reaches the simulator", []pkg{
			{ImportPath: m + "/internal/reach", Imports: []string{m + "/internal/vpc"}, Deps: []string{m + "/internal/vpc", m + "/internal/sim"}},
		}, []string{"internal/reach depends on " + m + "/internal/sim"}},
		{"ec2 reaches the controller", []pkg{
			{ImportPath: m + "/internal/ec2", Deps: []string{m + "/internal/vpc", m + "/internal/controller"}},
		}, []string{"internal/ec2 depends on " + m + "/internal/controller: an API handler records intent"}},
		{"cli builds a role itself", []pkg{
			{ImportPath: m + "/internal/cli", Imports: []string{m + "/internal/role", m + "/internal/nsdb", m + "/internal/agent"}},
		}, []string{"internal/cli imports " + m + "/internal/nsdb: the CLI reaches", "internal/cli imports " + m + "/internal/agent"}},
		{"agent imports controller and ec2", []pkg{
			{ImportPath: m + "/internal/agent", Deps: []string{m + "/internal/controller", m + "/internal/ec2"}},
		}, []string{"internal/controller", "internal/ec2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := violations(m, append(slices.Clone(base), c.pkgs...))
			if len(got) != len(c.want) {
				t.Fatalf("violations = %q\nwant %d matching %q", got, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestGoStatementsCaught checks the goroutine rule on a file that starts one.
func TestGoStatementsCaught(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\nfunc f() { go func() {}() }\n\nfunc g() {}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := goStatements(pkg{ImportPath: "example.com/c/internal/sim", Dir: dir, GoFiles: []string{"p.go"}})
	if len(got) != 1 || !strings.Contains(got[0], "p.go:3") {
		t.Fatalf("goStatements = %q, want one hit at p.go:3", got)
	}
}
