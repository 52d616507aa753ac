package vpc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure enforces DESIGN.md §2: this package does no I/O and starts no
// goroutines. Its non-test files import only the standard library (minus
// the I/O packages) and the module's pure packages, and hold no go
// statement.
func TestPure(t *testing.T) {
	allowed := map[string]bool{
		"github.com/canopy-sdn/canopy/internal/topology": true,
		"github.com/canopy-sdn/canopy/internal/vpc":      true,
	}
	banned := []string{"os", "net/http", "syscall", "io/fs", "log", "log/slog", "os/exec"}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			first, _, _ := strings.Cut(p, "/")
			if strings.Contains(first, ".") && !allowed[p] {
				t.Errorf("%s imports %s: only the standard library and pure packages", name, p)
			}
			for _, b := range banned {
				if p == b {
					t.Errorf("%s imports %s: no I/O here", name, p)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: go statement at %s", name, fset.Position(g.Pos()))
			}
			return true
		})
	}
}
