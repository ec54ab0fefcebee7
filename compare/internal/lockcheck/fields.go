package lockcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
)

// MultiNameFields returns one line ("file:line:col: ...") for each field
// declaration naming more than one field ("a, b int") in a struct whose
// fields carry a checklocks annotation, in the Go files of dir. The
// analyzer pairs the struct's declarations with its fields by index, so
// after such a line every annotation lands on the wrong field, without a
// word (testdata/patterns/fieldlist.go).
func MultiNameFields(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var found []string
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			st, ok := n.(*ast.StructType)
			if !ok || !annotated(st) {
				return true
			}
			for _, field := range st.Fields.List {
				if len(field.Names) > 1 {
					found = append(found, fmt.Sprintf("%s: %s declared on one line in a struct with lock annotations: "+
						"declare one field per line, or checklocks puts the annotations after it on the wrong fields",
						fset.Position(field.Pos()), names(field)))
				}
			}
			return true
		})
	}
	return found, nil
}

// annotated reports whether a field of st carries a checklocks
// annotation.
func annotated(st *ast.StructType) bool {
	for _, field := range st.Fields.List {
		for _, cg := range []*ast.CommentGroup{field.Doc, field.Comment} {
			if cg == nil {
				continue
			}
			for _, c := range cg.List {
				if strings.HasPrefix(c.Text, "// +checklocks") || strings.HasPrefix(c.Text, "// +checkatomic") {
					return true
				}
			}
		}
	}
	return false
}

// names is the field's names as written.
func names(field *ast.Field) string {
	s := make([]string, len(field.Names))
	for i, n := range field.Names {
		s[i] = n.Name
	}
	return strings.Join(s, ", ")
}
