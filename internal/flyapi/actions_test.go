package flyapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// actionConstants reads the package's source and returns the value of every constant named
// Action…, so that a constant added without being listed in Actions is noticed.
func actionConstants(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	consts := map[string]string{} // name → value
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, ident := range vs.Names {
					if !strings.HasPrefix(ident.Name, "Action") {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: constant %s is not a string literal", fset.Position(ident.Pos()), ident.Name)
					}
					value, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					consts[ident.Name] = value
				}
			}
		}
	}
	return consts
}

func TestActionsListsEveryConstant(t *testing.T) {
	consts := actionConstants(t)
	if len(consts) == 0 {
		t.Fatal("found no Action… constants in the package source")
	}
	listed := Actions()
	for name, value := range consts {
		if !slices.Contains(listed, value) {
			t.Errorf("%s (%q) is not in Actions()", name, value)
		}
	}
	values := map[string]bool{}
	for _, v := range consts {
		values[v] = true
	}
	seen := map[string]bool{}
	for _, a := range listed {
		if seen[a] {
			t.Errorf("Actions() lists %q twice", a)
		}
		seen[a] = true
		if !values[a] {
			t.Errorf("Actions() lists %q, which no Action… constant holds", a)
		}
	}
	if len(values) != len(consts) {
		t.Errorf("%d Action… constants share %d values: two constants name the same action", len(consts), len(values))
	}
}

func TestActionsReturnsACopy(t *testing.T) {
	a := Actions()
	a[0] = "changed"
	if Actions()[0] == "changed" {
		t.Fatal("Actions() hands out its own slice: a caller can change the list")
	}
}

// TestLimitsNameKnownActions guards against a misspelt PerAction key, which would silently leave
// that action at the default limit.
func TestLimitsNameKnownActions(t *testing.T) {
	for name, limits := range map[string]Limits{"published": PublishedLimits(), "default": DefaultLimits()} {
		if len(limits.PerAction) == 0 {
			t.Errorf("%s limits have no per-action entries", name)
		}
		for action := range limits.PerAction {
			if !slices.Contains(Actions(), action) {
				t.Errorf("%s limits name %q, which is not an action", name, action)
			}
		}
	}
}
