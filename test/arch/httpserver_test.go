package arch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// serverTimeouts are the http.Server fields every server of the project
// sets: without them a client that sends its headers or body slowly, or
// keeps an idle connection open, holds a goroutine and a descriptor forever
// (net/http's zero values mean no limit).
var serverTimeouts = []string{"ReadHeaderTimeout", "ReadTimeout", "WriteTimeout", "IdleTimeout"}

// TestHTTPServersHaveTimeouts finds every http.Server composite literal
// outside tests and requires the read, write and idle timeouts.
func TestHTTPServersHaveTimeouts(t *testing.T) {
	root, _ := moduleRoot(t)
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || !isHTTPServer(lit.Type) {
				return true
			}
			found++
			set := map[string]bool{}
			for _, el := range lit.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if id, ok := kv.Key.(*ast.Ident); ok {
						set[id.Name] = true
					}
				}
			}
			for _, field := range serverTimeouts {
				if !set[field] {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s:%d: http.Server without %s", rel, fset.Position(lit.Pos()).Line, field)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 4 { // REST, EC2, agent /metrics, metadata relay at least
		t.Fatalf("found only %d http.Server literals; is the walk looking at the module?", found)
	}
}

func isHTTPServer(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "http" && sel.Sel.Name == "Server"
}
