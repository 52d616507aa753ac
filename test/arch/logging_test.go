package arch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// globalLogging are the log/slog functions that use or replace the process's
// default logger. A role hands its *slog.Logger to every piece it builds;
// a piece that logs through the default escapes the role's level and
// destination, and one that replaces it silences (or floods) everyone else's
// (canopy up once discarded the store's warnings that way).
var globalLogging = map[string]string{
	"SetDefault": "replaces the process's logger",
	"Debug":      "logs through the process's default logger",
	"Info":       "logs through the process's default logger",
	"Warn":       "logs through the process's default logger",
	"Error":      "logs through the process's default logger",
	"Log":        "logs through the process's default logger",
	"LogAttrs":   "logs through the process's default logger",
}

// TestLoggersArePassedIn fails on a call in internal/ or cmd/ that logs
// through, or replaces, slog's default logger (outside tests). The
// benchmark programs under bench/ are mains of their own and may set
// theirs.
func TestLoggersArePassedIn(t *testing.T) {
	root, _ := moduleRoot(t)
	files := 0
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
		rel, _ := filepath.Rel(root, path)
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			!strings.HasPrefix(rel, "internal/") && !strings.HasPrefix(rel, "cmd/") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		for _, b := range globalLogCalls(fset, f) {
			t.Errorf("%s:%s", rel, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("looked at only %d files; is the walk looking at the module?", files)
	}
}

// TestGlobalLogCallsCaught feeds the checker each kind of breach.
func TestGlobalLogCallsCaught(t *testing.T) {
	src := `package x
import "log/slog"
func f(log *slog.Logger) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	slog.Warn("w")
	log.Warn("fine: a logger handed in")
	_ = slog.Default()
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := globalLogCalls(fset, f)
	if len(got) != 2 || !strings.HasPrefix(got[0], "4:") || !strings.HasPrefix(got[1], "5:") {
		t.Fatalf("globalLogCalls = %q, want lines 4 and 5", got)
	}
}

// globalLogCalls lists the calls of f to globalLogging's functions.
func globalLogCalls(fset *token.FileSet, f *ast.File) []string {
	name := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "log/slog" {
			name = "slog"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == name && pkg.Obj == nil {
			if why, bad := globalLogging[sel.Sel.Name]; bad {
				out = append(out, strconv.Itoa(fset.Position(call.Pos()).Line)+": slog."+sel.Sel.Name+" "+why+"; use the logger of the role's config")
			}
		}
		return true
	})
	return out
}
