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

// codesFile declares every EC2 error code, once (internal/ec2/errors.go maps
// them to HTTP statuses).
const codesFile = "internal/vpc/codes.go"

// codeFields are the fields whose values are EC2 error codes: vpc.Error's
// Code and vpc.IDKind's NotFound and Malformed.
var codeFields = map[string]bool{"Code": true, "NotFound": true, "Malformed": true}

// TestEC2CodesDeclaredOnce fails when an EC2 error code is spelled as a
// string literal outside internal/vpc/codes.go, or a Code constant is
// declared elsewhere: a code typed twice drifts (a typo answers a code no
// client knows, with a status the table never gave it).
func TestEC2CodesDeclaredOnce(t *testing.T) {
	root, _ := moduleRoot(t)
	codes := declaredCodes(t, filepath.Join(root, codesFile))
	if len(codes) < 50 {
		t.Fatalf("found only %d codes in %s; is the parse looking at the constants?", len(codes), codesFile)
	}
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
		// Tests spell the codes a client sees on purpose: they check the
		// wire, independently of the constants.
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || rel == codesFile {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		for _, b := range codeBreaches(fset, f, codes) {
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

// TestCodeCheckerCatchesBreaches feeds the checker each kind of breach, so a
// checker that accepts everything fails here.
func TestCodeCheckerCatchesBreaches(t *testing.T) {
	codes := map[string]bool{"InvalidVpcID.NotFound": true}
	for _, src := range []string{
		`var e = &vpc.Error{Code: "InvalidVpcID.NotFound"}`,        // a declared code spelled again
		`var e = &vpc.Error{Code: "NewlyInventedCode"}`,            // an undeclared code
		`var k = vpc.IDKind{"x", NotFound: "Bad.NotFound"}`,        // an id kind's code
		`var c = vpc.Code("Anything")`,                             // a conversion
		`func f() bool { return code == "InvalidVpcID.NotFound" }`, // a comparison
		`const CodeMine vpc.Code = "Mine"`,                         // a declaration elsewhere
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", "package x\n"+src, 0)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if len(codeBreaches(fset, f, codes)) == 0 {
			t.Errorf("not caught: %s", src)
		}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", "package x\nvar e = &vpc.Error{Code: vpc.CodeInvalidVpcIDNotFound, Message: \"InvalidVpcID\"}", 0)
	if err != nil {
		t.Fatal(err)
	}
	if b := codeBreaches(fset, f, codes); len(b) != 0 {
		t.Errorf("the constant's use is flagged: %v", b)
	}
}

// declaredCodes reads the values of the Code constants in path.
func declaredCodes(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if !isCodeType(vs.Type) {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					codes[s] = true
				}
			}
		}
	}
	return codes
}

// codeBreaches lists the places in f that spell an EC2 code: a literal equal
// to a declared code, a literal given to a code field or converted to Code,
// and a Code constant declared outside the table.
func codeBreaches(fset *token.FileSet, f *ast.File, codes map[string]bool) []string {
	var out []string
	flag := func(n ast.Node, what string) {
		out = append(out, strconv.Itoa(fset.Position(n.Pos()).Line)+": "+what)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				if s, err := strconv.Unquote(n.Value); err == nil && codes[s] {
					flag(n, "the EC2 code "+n.Value+" spelled outside "+codesFile+"; use its constant")
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && codeFields[k.Name] && isStringLit(n.Value) {
				flag(n, k.Name+": a string literal; declare the code in "+codesFile)
			}
		case *ast.CallExpr:
			if isCodeType(n.Fun) && len(n.Args) == 1 && isStringLit(n.Args[0]) {
				flag(n, "a Code converted from a literal; declare it in "+codesFile)
			}
		case *ast.GenDecl:
			for _, s := range n.Specs {
				if vs, ok := s.(*ast.ValueSpec); ok && n.Tok == token.CONST && isCodeType(vs.Type) {
					flag(vs, "a Code constant declared outside "+codesFile)
				}
			}
		}
		return true
	})
	return out
}

// isCodeType reports whether e names the type Code or vpc.Code.
func isCodeType(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "Code"
	case *ast.SelectorExpr:
		pkg, ok := e.X.(*ast.Ident)
		return ok && pkg.Name == "vpc" && e.Sel.Name == "Code"
	}
	return false
}
