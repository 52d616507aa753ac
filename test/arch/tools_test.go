package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The programs the code runs (tests, benchmarks, and what they start:
// canopy's instance driver runs busybox udhcpc) and the Debian package of
// each. A program must be in this table, and its package in the Makefile's
// APT_PKGS or in basePackages, so that `make test` on a fresh Debian 12
// machine has everything (issue 10): a tool installed by hand on a
// developer's machine would otherwise pass here and fail there.
var toolPackage = map[string]string{
	"ip":                 "iproute2",
	"ss":                 "iproute2",
	"ping":               "iputils-ping",
	"traceroute":         "traceroute",
	"iperf3":             "iperf3",
	"hping3":             "hping3",
	"busybox":            "busybox-static", // its udhcpc and wget; the QEMU guest's userland
	"qemu-system-x86_64": "qemu-system-x86",
	"curl":               "curl",
	"kill":               "procps",
	"seq":                "coreutils",
	"sed":                "sed",
	"sleep":              "coreutils",
	"mkdir":              "coreutils",
	"sysctl":             "procps",
	"python3":            "python3",
	"perf":               "linux-perf",
	"etcd":               "etcd-server",
	"etcdctl":            "etcd-client",
	"aws":                "awscli",
	"openstack":          "python3-openstackclient",
	"vtysh":              "frr", // and its daemons, /usr/lib/frr/{zebra,bgpd,bfdd}
	"bash":               "bash",
	"sh":                 "dash",
	"cat":                "coreutils",
	"timeout":            "coreutils",
	"rm":                 "coreutils",
	"true":               "coreutils",
	"grep":               "grep",
	"awk":                "mawk",
	"nsenter":            "util-linux",
	"ldd":                "libc-bin", // the shared libraries of the programs a QEMU guest gets
	"clang":              "clang",    // compiles internal/fastpath's BPF program (go generate; its test)
	"llvm-strip":         "llvm",     // bpf2go strips the object's DWARF with it
	"dpkg-query":         "dpkg",     // test/arch reads the package database
	"go":                 "",         // the Go toolchain: `make deps` requires it; no Debian package
	"canopy":             "",         // built from this repository
	// terraform and its AWS provider are on the machine image CI runs on
	// (no Debian package): test/e2e TestTerraform fails under CI=true
	// without them.
	"terraform": "",
	// test/openstack/tempest.sh runs it; test/e2e TestTempestInterop
	// runs that script (issue 14).
	"tempest": "tempest",
}

// basePackages are on every Debian 12 system: Priority required, what
// `debootstrap --variant=minbase` installs. Nothing else may be assumed.
var basePackages = []string{"bash", "coreutils", "dash", "dpkg", "findutils", "grep", "libc-bin", "mawk", "sed", "util-linux"}

// TestToolsAreInstalled finds every program the code runs and checks that
// `make deps` installs it.
func TestToolsAreInstalled(t *testing.T) {
	root, module := moduleRoot(t)
	apt := aptPackages(t, filepath.Join(root, "Makefile"))
	found, err := scanTools(root, module)
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"ip", "ping", "traceroute", "iperf3", "busybox", "curl", "python3", "etcdctl", "aws"} {
		if _, ok := found[must]; !ok {
			t.Errorf("the scan did not find %s, which the tests run: it is broken", must)
		}
	}
	for tool, where := range found {
		pkg, known := toolPackage[tool]
		switch {
		case !known:
			t.Errorf("%s runs %q, unknown to test/arch: add it to toolPackage with its Debian package (dpkg -S $(command -v %s)), and the package to APT_PKGS in the Makefile", where[0], tool, tool)
		case pkg != "" && !slices.Contains(apt, pkg) && !slices.Contains(basePackages, pkg):
			t.Errorf("%s runs %q from Debian's %s, which `make deps` does not install: add it to APT_PKGS in the Makefile", where[0], tool, pkg)
		}
	}
	for tool := range toolPackage {
		if _, ok := found[tool]; !ok {
			t.Errorf("toolPackage lists %s, which nothing runs any more: delete it (or the scan lost it)", tool)
		}
	}
	checkOwners(t, found)
	var list []string
	for tool, where := range found {
		list = append(list, tool+" ("+toolPackage[tool]+", "+where[0]+")")
	}
	slices.Sort(list)
	t.Logf("%d programs run:\n%s", len(list), strings.Join(list, "\n"))
}

// checkOwners checks the table against this machine's package database
// where the programs are installed: each is the mapped package's (or one
// it depends on), and what a test runs by name is not shadowed by a copy
// outside the system directories (a pyenv shim, /usr/local).
func checkOwners(t *testing.T, found map[string][]string) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Log("no dpkg here: the package of each program is not checked")
		return
	}
	deps := installedDeps()
	for tool, where := range found {
		pkg := toolPackage[tool]
		if pkg == "" {
			continue
		}
		if p, err := exec.LookPath(tool); err == nil && where[1] == "by name" && !inSystemDir(p) {
			t.Errorf("%s runs %q by name, and here that is %s, not Debian's: give the test the path of Debian's program (/usr/bin/%s) or take the other off the PATH", where[0], tool, p, tool)
		}
		bin := systemPath(tool)
		if bin == "" {
			continue // not installed here: the test that runs it fails instead
		}
		owner := dpkgOwner(bin)
		if owner == "" {
			t.Errorf("%s is in no Debian package: installed by hand? (toolPackage says %s)", bin, pkg)
			continue
		}
		if !dependsOn(deps, pkg, owner, 3) {
			t.Errorf("%s belongs to Debian's %s, but toolPackage says %s", bin, owner, pkg)
		}
	}
}

// inSystemDir reports whether p is in a system directory, itself or where
// its symlink leads (Debian's clang is /usr/bin/clang → /usr/lib/llvm-14/bin).
func inSystemDir(p string) bool {
	sys := []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"}
	r, _ := filepath.EvalSymlinks(p)
	return slices.Contains(sys, filepath.Dir(p)) || slices.Contains(sys, filepath.Dir(r))
}

// systemPath is the program's file in a system directory, symlinks (such as
// Debian's alternatives) resolved; "" when it is not installed.
func systemPath(tool string) string {
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
		if p, err := filepath.EvalSymlinks(filepath.Join(dir, tool)); err == nil {
			return p
		}
	}
	return ""
}

// dpkgOwner is the package that installed file ("" if none). A merged-/usr
// system registers some files under /bin or /sbin, so both are asked.
func dpkgOwner(file string) string {
	for _, f := range []string{file, strings.TrimPrefix(file, "/usr")} {
		out, err := exec.Command("dpkg-query", "-S", f).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			pkgs, p, ok := strings.Cut(line, ": ")
			if ok && p == f && !strings.HasPrefix(line, "diversion ") {
				pkg, _, _ := strings.Cut(strings.Split(pkgs, ", ")[0], ":") // drop :amd64
				return pkg
			}
		}
	}
	return ""
}

// dependsOn reports whether pkg is want or depends on it within depth
// steps (Depends and Pre-Depends, alternatives included), in deps: the
// installed packages' dependencies (installedDeps).
func dependsOn(deps map[string][]string, pkg, want string, depth int) bool {
	if pkg == want {
		return true
	}
	if depth == 0 {
		return false
	}
	for _, d := range deps[pkg] {
		if dependsOn(deps, d, want, depth-1) {
			return true
		}
	}
	return false
}

// installedDeps reads the dependencies of every installed package at once.
func installedDeps() map[string][]string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\n").Output()
	if err != nil {
		return nil
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		pkg, list, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		for _, dep := range regexp.MustCompile(`[,|]`).Split(list, -1) {
			name, _, _ := strings.Cut(strings.TrimSpace(dep), " ")
			name, _, _ = strings.Cut(name, ":")
			if name != "" {
				deps[pkg] = append(deps[pkg], name)
			}
		}
	}
	return deps
}

// aptPackages reads APT_PKGS from the Makefile (continuation lines joined).
func aptPackages(t *testing.T, makefile string) []string {
	t.Helper()
	b, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^APT_PKGS\s*:?=(.*)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("the Makefile has no APT_PKGS")
	}
	return strings.Fields(m[1])
}

// scanTools finds the programs run by the Go code under root and by the
// shell the tests run (*.sh, and the README's `up` block that test/e2e
// runs). It maps each program to where it is run: a position, and "by
// name" when a Go exec call names it without a path.
func scanTools(root, module string) (map[string][]string, error) {
	found := map[string][]string{}
	add := func(tool, where, how string) {
		tool = path.Base(tool)
		if _, ok := found[tool]; !ok || how == "by name" {
			found[tool] = []string{where, how}
		}
	}
	files := map[string][]*ast.File{} // by package directory
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(p, ".go"):
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files[filepath.Dir(p)] = append(files[filepath.Dir(p)], f)
		case strings.HasSuffix(p, ".sh"):
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, c := range shellCommands(string(b)) {
				add(c, rel(root, p), "script")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(root, "README.md")); err == nil {
		if _, block, ok := strings.Cut(string(b), "<!-- up:begin -->"); ok {
			block, _, _ = strings.Cut(block, "<!-- up:end -->")
			for _, c := range shellCommands(shFences(block)) {
				add(c, "README.md (up block)", "script")
			}
		}
	}
	s := &goScan{fset: fset, root: root, module: module, files: files, helpers: map[string]int{}}
	s.findHelpers()
	s.findCommands(func(tool string, pos token.Pos, byName bool) {
		how := "by path"
		if byName {
			how = "by name"
		}
		add(tool, rel(root, fset.Position(pos).String()), how)
	})
	return found, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// goScan finds exec calls in Go code. A command line is the argument list
// of exec.Command (after the context for CommandContext) or, from one of
// its string parameters on, of a helper: a function whose parameter ends
// up at a command position of an exec call (nsRun(ns, "ping", …),
// vm.Exec("curl", …), sh("iperf3", …)). Within a
// command line, "ip netns exec NS", "timeout D" and "nsenter --flags"
// start another command, and "bash -c SCRIPT" runs a script.
type goScan struct {
	fset    *token.FileSet
	root    string
	module  string
	files   map[string][]*ast.File
	helpers map[string]int // "dir:Type.name" ("dir:.name" for a function) → index of the command's parameter
}

// funcs calls f for every function with a body in dir: declarations
// (recv is a method's receiver type) and function literals bound to a name
// (name := func(…)).
func (s *goScan) funcs(dir string, f func(recv, name string, typ *ast.FuncType, body *ast.BlockStmt)) {
	for _, file := range s.files[dir] {
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Body != nil {
					f(recvType(n), n.Name.Name, n.Type, n.Body)
				}
			case *ast.AssignStmt:
				for i, r := range n.Rhs {
					if fl, ok := r.(*ast.FuncLit); ok && i < len(n.Lhs) {
						if id, ok := n.Lhs[i].(*ast.Ident); ok {
							f("", id.Name, fl.Type, fl.Body)
						}
					}
				}
			}
			return true
		})
	}
}

func recvType(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return ""
	}
	t := d.Recv.List[0].Type
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}

// findHelpers marks the helpers, to a fixed point (a helper may call one).
func (s *goScan) findHelpers() {
	for changed := true; changed; {
		changed = false
		for dir := range s.files {
			s.funcs(dir, func(recv, name string, typ *ast.FuncType, body *ast.BlockStmt) {
				key := dir + ":" + recv + "." + name
				if _, ok := s.helpers[key]; ok {
					return
				}
				// A helper has a string parameter (name string, or
				// args ...string) that reaches a command position.
				type param struct {
					name     string
					idx      int
					variadic bool
				}
				var cands []param
				idx := 0
				for _, p := range typ.Params.List {
					ell, variadic := p.Type.(*ast.Ellipsis)
					str := isIdent(p.Type, "string") || variadic && isIdent(ell.Elt, "string")
					for _, n := range p.Names {
						if str {
							cands = append(cands, param{n.Name, idx, variadic})
						}
						idx++
					}
					if len(p.Names) == 0 {
						idx++
					}
				}
				hit, idx := false, 0
				ast.Inspect(body, func(n ast.Node) bool {
					if c, ok := n.(*ast.CallExpr); ok {
						for _, e := range s.commandPositions(dir, c) {
							for _, p := range cands {
								if isIdent(e, p.name) || p.variadic && isIndex0(e, p.name) {
									hit, idx = true, p.idx
								}
							}
						}
					}
					return !hit
				})
				if hit {
					s.helpers[key] = idx
					changed = true
				}
			})
		}
	}
}

// findCommands reports every literal at a command position.
func (s *goScan) findCommands(report func(tool string, pos token.Pos, byName bool)) {
	absRE := regexp.MustCompile(`(?:^|[\s'"=:;(])/(?:usr/)?s?bin/([a-z0-9][a-z0-9._+-]*)`)
	for dir, files := range s.files {
		for _, file := range files {
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					for _, e := range s.commandPositions(dir, n) {
						if lit, ok := stringLit(e); ok && lit != "" {
							report(lit, e.Pos(), !strings.Contains(lit, "/"))
						}
					}
				case *ast.BasicLit:
					// A program named by its path anywhere, also inside a
					// script ("exec /usr/bin/aws …") or a constant.
					if lit, ok := stringLit(n); ok {
						for _, m := range absRE.FindAllStringSubmatch(lit, -1) {
							report(m[1], n.Pos(), false)
						}
					}
				}
				return true
			})
		}
	}
}

// commandPositions returns the expressions at command positions of call,
// when call runs a command line; scripts given to bash -c are read too.
func (s *goScan) commandPositions(dir string, call *ast.CallExpr) []ast.Expr {
	var lines [][]ast.Expr
	switch fn := call.Fun.(type) {
	case *ast.SelectorExpr:
		if x, ok := fn.X.(*ast.Ident); ok && x.Name == "exec" {
			switch fn.Sel.Name {
			case "Command", "LookPath":
				lines = append(lines, flatten(call.Args))
			case "CommandContext":
				if len(call.Args) > 0 {
					lines = append(lines, flatten(call.Args[1:]))
				}
			}
			break
		}
		idxs := s.helperAt(dir, fn)
		for _, idx := range idxs {
			// Without types, x.Exec may be either of two helpers of that
			// name: a candidate whose command would follow a literal word
			// is the other one's argument list (vm.Exec("ip", "neigh") is
			// not l.Exec(ns, args...)).
			if idx >= len(call.Args) || len(idxs) > 1 && idx > 0 && isStringLit(call.Args[idx-1]) {
				continue
			}
			lines = append(lines, flatten(call.Args[idx:]))
		}
	case *ast.Ident:
		if idx, ok := s.helpers[dir+":."+fn.Name]; ok && idx < len(call.Args) {
			lines = append(lines, flatten(call.Args[idx:]))
		}
	}
	var out []ast.Expr
	for _, line := range lines {
		out = append(out, commandWords(line)...)
	}
	return out
}

// commandWords walks one command line and returns its command positions.
func commandWords(line []ast.Expr) []ast.Expr {
	var out []ast.Expr
	for i := 0; i < len(line); {
		out = append(out, line[i])
		lit, _ := stringLit(line[i])
		word := func(j int) string { w, _ := stringLit(at(line, j)); return w }
		switch path.Base(lit) {
		case "ip":
			if word(i+1) == "netns" && word(i+2) == "exec" {
				i += 4
				continue
			}
		case "timeout":
			j := i + 1
			for strings.HasPrefix(word(j), "-") {
				j++
			}
			i = j + 1
			continue
		case "nsenter":
			j := i + 1
			for strings.HasPrefix(word(j), "-") {
				j++
			}
			i = j
			continue
		case "bash", "sh":
			for j := i + 1; strings.HasPrefix(word(j), "-"); j++ {
				if word(j) != "-c" {
					continue
				}
				if script, ok := stringLit(at(line, j+1)); ok {
					for _, c := range shellCommands(script) {
						out = append(out, &ast.BasicLit{ValuePos: line[j+1].Pos(), Kind: token.STRING, Value: strconv.Quote(c)})
					}
				}
				break
			}
		}
		break
	}
	return out
}

// helperAt resolves x.Name(…) to the variadic index of the helpers it may
// be: a function of an imported package of this module (netnstest.Run), or
// a method named Name defined in this package or in a package of this
// module that one of its files imports (vm.Exec, with VM from
// test/e2e/netns).
func (s *goScan) helperAt(dir string, fn *ast.SelectorExpr) []int {
	dirs := []string{dir}
	for _, file := range s.files[dir] {
		for _, imp := range file.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			r, ok := strings.CutPrefix(p, s.module+"/")
			if !ok {
				continue
			}
			d := filepath.Join(s.root, filepath.FromSlash(r))
			name := path.Base(p)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if x, ok := fn.X.(*ast.Ident); ok && x.Name == name {
				if idx, ok := s.helpers[d+":."+fn.Sel.Name]; ok {
					return []int{idx}
				}
				return nil
			}
			dirs = append(dirs, d)
		}
	}
	var idxs []int
	for key, idx := range s.helpers {
		d, m, _ := strings.Cut(key, ":")
		recv, name, _ := strings.Cut(m, ".")
		if recv != "" && name == fn.Sel.Name && slices.Contains(dirs, d) && !slices.Contains(idxs, idx) {
			idxs = append(idxs, idx)
		}
	}
	slices.Sort(idxs)
	return idxs
}

// flatten lists the words of an argument list: append(a, b...) and
// []string{…} literals are opened; anything else is one word.
func flatten(args []ast.Expr) []ast.Expr {
	var out []ast.Expr
	for _, a := range args {
		switch a := a.(type) {
		case *ast.CallExpr:
			if isIdent(a.Fun, "append") {
				out = append(out, flatten(a.Args)...)
				continue
			}
		case *ast.CompositeLit:
			if at, ok := a.Type.(*ast.ArrayType); ok && isIdent(at.Elt, "string") {
				out = append(out, flatten(a.Elts)...)
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func at(xs []ast.Expr, i int) ast.Expr {
	if i < len(xs) {
		return xs[i]
	}
	return nil
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// isIndex0 reports whether e is v[0].
func isIndex0(e ast.Expr, v string) bool {
	ix, ok := e.(*ast.IndexExpr)
	if !ok || !isIdent(ix.X, v) {
		return false
	}
	lit, ok := ix.Index.(*ast.BasicLit)
	return ok && lit.Value == "0"
}

func isStringLit(e ast.Expr) bool { _, ok := stringLit(e); return ok }

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// Shell words: after a prefix word a command follows; after a terminator
// the rest of the simple command is arguments (or patterns, variables).
var (
	shellPrefix = map[string]bool{"if": true, "then": true, "else": true, "elif": true, "while": true,
		"until": true, "do": true, "!": true, "{": true, "time": true, "exec": true, "command": true}
	shellTerminator = map[string]bool{"fi": true, "done": true, "esac": true, "}": true, "for": true,
		"case": true, "select": true, "in": true, "function": true, "return": true, "exit": true,
		"export": true, "local": true, "readonly": true, "declare": true, "unset": true, "set": true,
		"shift": true, "read": true, "cd": true, "trap": true, "wait": true, "eval": true, "echo": true,
		"printf": true, "test": true, "[": true, "[[": true, ".": true, "source": true, ":": true,
		"true": true, "false": true, "break": true, "continue": true}
)

// shellCommands returns the programs a shell script runs: the first word
// of each simple command (after assignments and prefix words), leaving
// out the script's own functions, case patterns and words made of
// variables. Single-quoted text is no command and is dropped first.
func shellCommands(script string) []string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	script = regexp.MustCompile(`'[^']*'`).ReplaceAllString(script, "''")
	own := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\)`).FindAllStringSubmatch(script, -1) {
		own[m[1]] = true
	}
	var out []string
	split := regexp.MustCompile(`\|\||&&|;;|[|;&\x60\n]|\$\(`)
	for _, line := range strings.Split(script, "\n") {
		// A comment, or a case pattern such as "bound|renew)".
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || regexp.MustCompile(`^[^()]*\)$`).MatchString(t) {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		for _, seg := range split.Split(line, -1) {
			words := strings.Fields(seg)
		next:
			for len(words) > 0 {
				w := strings.Trim(words[0], `"`)
				switch {
				case shellPrefix[w] || strings.Contains(w, "=") && !strings.HasPrefix(w, "="):
					words = words[1:]
					continue
				case w == "ip" && len(words) > 3 && words[1] == "netns" && words[2] == "exec":
					out = append(out, "ip")
					words = words[4:]
					continue
				case w == "" || shellTerminator[w] || own[w] || strings.HasSuffix(w, ")") ||
					strings.ContainsAny(w[:1], "$-<>()0123456789}]'"):
				default:
					out = append(out, w)
				}
				break next
			}
		}
	}
	return out
}

// shFences returns the ```sh code blocks of a Markdown text.
func shFences(md string) string {
	var b strings.Builder
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(md, -1) {
		b.WriteString(m[1])
		b.WriteString("\n")
	}
	return b.String()
}

// TestToolScanCatches feeds the scanner code that runs programs in each way
// the repository does, so a scanner that finds nothing fails here.
func TestToolScanCatches(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"x.go.txt", "s.sh"} {
		b, err := os.ReadFile(filepath.Join("testdata", "tools", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, strings.TrimSuffix(name, ".txt")), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	found, err := scanTools(root, "example.com/x")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for tool := range found {
		got = append(got, tool)
	}
	slices.Sort(got)
	want := []string{"arping", "bash", "curl", "dig", "ethtool", "ip", "jq", "logger", "mtr", "nc", "nft", "ping", "socat", "ss", "tcpdump", "timeout", "tr", "tshark"}
	if !slices.Equal(got, want) {
		t.Errorf("found %v\nwant  %v", got, want)
	}
	if fmt.Sprint(found["socat"]) == "" || found["arping"][1] != "by name" || found["ethtool"][1] != "by path" {
		t.Errorf("where: socat %v, arping %v, ethtool %v", found["socat"], found["arping"], found["ethtool"])
	}
}
