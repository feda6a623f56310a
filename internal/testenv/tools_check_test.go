package testenv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDefaultToolsCoverTheTests reads every Go file of the repository for
// the tools the tests look up in the tools cache (Tool, Tools and
// filepath.Join(ToolsDir(), ...)) and fails when `hack/tools.sh` with no
// arguments — what `make test` runs — would not build one of them. It
// never looks at the cache itself, so a cache warmed by `make bench` or by
// hand cannot hide a missing install step.
func TestDefaultToolsCoverTheTests(t *testing.T) {
	// go test runs in the package's directory, two below the repository.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	used, problems := toolLookups(t, root)
	for _, p := range problems {
		t.Error(p)
	}
	// The scan itself must see the lookups it exists for; an empty result
	// would pass any default set.
	for _, want := range []string{"minio", "mc", "consul", "etcd", "kube-apiserver", "kubectl"} {
		if _, ok := used[want]; !ok {
			t.Errorf("the scan found no lookup of %s: is it still reading the tests?", want)
		}
	}
	out, err := exec.Command("bash", filepath.Join(root, "hack", "tools.sh"), "--list").Output()
	if err != nil {
		t.Fatalf("hack/tools.sh --list: %v", err)
	}
	built := strings.Fields(string(out))
	for name, where := range used {
		if !slices.Contains(built, name) {
			t.Errorf("%s looks up tool %q, which hack/tools.sh does not build by default (its ALL list): "+
				"add it there so `make test` on a fresh machine builds it", where, name)
		}
	}
}

// TestToolLookupsSeesEveryForm checks the scanner on a file of its own: a
// literal in each form is found, and a name it cannot read is a problem.
func TestToolLookupsSeesEveryForm(t *testing.T) {
	dir := t.TempDir()
	src := `package x

func f(t T, name string) {
	testenv.Tool(t, "alpha")
	Tools(t, "beta", "gamma")
	_ = filepath.Join(testenv.ToolsDir(), "delta")
	Tool(t, name)
}
`
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	used, problems := toolLookups(t, dir)
	var names []string
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"alpha", "beta", "delta", "gamma"}; !slices.Equal(names, want) {
		t.Errorf("found %v, want %v", names, want)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "not a string literal") {
		t.Errorf("problems = %q, want one about the non-literal name", problems)
	}
}

// toolLookups parses every .go file under root (build tags ignored, so the
// e2e files count) and returns each tool name looked up with where it was
// first seen, plus the lookups whose name is not a string literal.
func toolLookups(t *testing.T, root string) (used map[string]string, problems []string) {
	t.Helper()
	used = map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "_output" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if fn, ok := n.(*ast.FuncDecl); ok && fn.Name.Name == "lookTool" {
				return false // where the cache is read, by whatever name it is given
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var names []ast.Expr
			switch funcName(call.Fun) {
			case "Tool", "Tools":
				if len(call.Args) > 1 {
					names = call.Args[1:]
				}
			case "Join":
				if len(call.Args) == 2 {
					if inner, ok := call.Args[0].(*ast.CallExpr); ok && funcName(inner.Fun) == "ToolsDir" {
						names = call.Args[1:]
					}
				}
			}
			for _, arg := range names {
				where := fset.Position(arg.Pos()).String()
				if rel, err := filepath.Rel(root, where); err == nil {
					where = rel
				}
				name, ok := stringLit(arg)
				if !ok {
					problems = append(problems, where+": a tool name that is not a string literal: "+
						"write the name out so this check can see it")
					continue
				}
				if _, seen := used[name]; !seen {
					used[name] = where
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used, problems
}

// funcName is the name a call is made by: f for f(...) and x.f(...).
func funcName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// stringLit is the value of a string literal, and false for anything else.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
