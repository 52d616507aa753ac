package arch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// storeKeyRoots are how the store's keys begin (DESIGN.md §4, relative to
// the store's prefix). Only internal/nsdb may spell them: everyone else
// goes through its typed methods and exported prefixes (STYLE.md: one
// place knows the keys). A string literal starting with one of them
// elsewhere is a key spelt by hand.
var storeKeyRoots = []string{"topo/", "topo-seq", "vpc/", "vpc-seq", "state/", "ec2/keys/", "ec2/client-tokens/", "bench/scratch", "/canopy/"}

func TestStoreKeysOnlyInNsdb(t *testing.T) {
	root, module := moduleRoot(t)
	cmd := exec.Command("go", "list", "-e", "-json", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pkgs {
		if under(module, p.ImportPath, "internal/nsdb") || !strings.HasPrefix(p.ImportPath, module+"/") {
			continue
		}
		checked++
		for _, v := range keyLiterals(p) {
			t.Error(v)
		}
	}
	if checked == 0 {
		t.Fatal("no package checked")
	}
}

// keyLiterals lists the string literals in p's non-test files that spell a
// store key.
func keyLiterals(p pkg) []string {
	var out []string
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
		if err != nil {
			out = append(out, p.ImportPath+": "+err.Error())
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, r := range storeKeyRoots {
				if strings.HasPrefix(v, r) {
					out = append(out, fset.Position(lit.Pos()).String()+": "+lit.Value+" spells a store key outside internal/nsdb (STYLE.md: one place knows the keys)")
					break
				}
			}
			return true
		})
	}
	return out
}

// TestKeyLiteralsCaught checks the key rule on a file that spells keys.
func TestKeyLiteralsCaught(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\nconst leader = \"state/controller/leader\"\n\nvar ok = \"vpcs\"\n\nfunc f(s string) string { return s + `topo/router/` }\n"
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := keyLiterals(pkg{ImportPath: "example.com/c/internal/ec2", Dir: dir, GoFiles: []string{"p.go"}})
	if len(got) != 2 || !strings.Contains(got[0], "p.go:3") || !strings.Contains(got[1], "p.go:7") {
		t.Fatalf("keyLiterals = %q, want hits at p.go:3 and p.go:7", got)
	}
}
