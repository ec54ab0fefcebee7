package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// The package documentation names every command main dispatches.
func TestPackageDocNamesCommands(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	var commands []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "main" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						name, _ := strconv.Unquote(lit.Value)
						// "bench" only points to cmd/synstack-bench.
						if !strings.HasPrefix(name, "-") && name != "help" && name != "bench" {
							commands = append(commands, name)
						}
					}
				}
			}
			return true
		})
		return false
	})
	if len(commands) < 7 {
		t.Fatalf("found %d commands in main (%v): is the dispatch still a switch on os.Args[1]?", len(commands), commands)
	}
	for _, c := range commands {
		if !strings.Contains(doc, "synstack "+c+" ") && !strings.Contains(doc, "synstack "+c+"\n") {
			t.Errorf("the package documentation does not name %q", c)
		}
		if !strings.Contains(usage, "\n  "+c+" ") {
			t.Errorf("the usage does not name %q", c)
		}
	}
}
