package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxLines is the longest a library function may be, from "func" to its
// closing brace (issue 16): longer, it no longer reads top to bottom.
const maxLines = 120

// pending names the root package's functions that are still longer than
// maxLines while the lead moves them into internal/engine; they are the
// lead's to split. A name applies only in the root package and in
// internal/engine. Delete a line once its function is short: the test fails
// on a name here that is no longer too long, so the list only shrinks, and
// an empty list is the goal. A name is as the test prints it:
// "(*Stack).input", "Conn.String", "newShard".
var pending = map[string]bool{}

// pendingDirs are the directories, relative to the module root, where a
// pending name applies.
var pendingDirs = map[string]bool{".": true, "internal/engine": true}

// long is one function longer than maxLines.
type long struct {
	pos   token.Position
	name  string // "Name" or "(*Recv).Name"
	lines int
}

func (l long) String() string {
	return fmt.Sprintf("%s:%d: %s is %d lines (at most %d)", l.pos.Filename, l.pos.Line, l.name, l.lines, maxLines)
}

// funcName is a declaration's name as a reader looks it up: "Name", or
// "(*Recv).Name" / "Recv.Name" for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	star := ""
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = "*", s.X
	}
	switch x := t.(type) { // drop type parameters: T[K, V] is T
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	recv := "?"
	if id, ok := t.(*ast.Ident); ok {
		recv = id.Name
	}
	if star != "" {
		return "(" + star + recv + ")." + fd.Name.Name
	}
	return recv + "." + fd.Name.Name
}

// longFuncs returns the functions of a parsed file longer than max lines, or
// nothing for a generated file.
func longFuncs(fset *token.FileSet, f *ast.File, max int) []long {
	if ast.IsGenerated(f) {
		return nil
	}
	var out []long
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start := fset.Position(fd.Pos()) // the "func" keyword, not the doc comment
		end := fset.Position(fd.End())   // the closing brace
		if n := end.Line - start.Line + 1; n > max {
			out = append(out, long{pos: start, name: funcName(fd), lines: n})
		}
	}
	return out
}

// libraryFiles lists the module's non-test Go files below dir, relative to
// it: not in testdata, a hidden or underscore directory, or a nested module.
func libraryFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == dir {
				return nil
			}
			if name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module is not this module's library
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// TestFunctionLength fails on every library function longer than maxLines,
// except the lead's pending ones, and on a pending name that is short now.
func TestFunctionLength(t *testing.T) {
	dir := root(t)
	files, err := libraryFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d library files below %s; the walk is wrong", len(files), dir)
	}
	fset := token.NewFileSet()
	var found []long
	for _, rel := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, rel), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range longFuncs(fset, f, maxLines) {
			l.pos.Filename = filepath.ToSlash(rel)
			found = append(found, l)
		}
	}
	bad, stale := sortOut(found, pending)
	for _, l := range bad {
		t.Errorf("%v: split it into named steps", l)
	}
	for _, name := range stale {
		t.Errorf("pending names %s, which is no longer longer than %d lines in the root package or internal/engine: delete it from the list", name, maxLines)
	}
}

// sortOut splits the long functions found (their Filename relative to the
// module's root) into those that fail, and returns too the pending names
// that no longer name a long function, sorted.
func sortOut(found []long, pending map[string]bool) (bad []long, stale []string) {
	stillLong := map[string]bool{}
	for _, l := range found {
		if pendingDirs[path.Dir(l.pos.Filename)] && pending[l.name] {
			stillLong[l.name] = true
			continue
		}
		bad = append(bad, l)
	}
	for name := range pending {
		if !stillLong[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	return bad, stale
}

// A pending name excuses a long function of the root package or
// internal/engine, and no other; a pending name with no long function is
// reported.
func TestSortOut(t *testing.T) {
	at := func(file, name string) long {
		return long{pos: token.Position{Filename: file, Line: 1}, name: name, lines: maxLines + 1}
	}
	found := []long{
		at("stack.go", "(*Stack).input"),
		at("internal/engine/ip.go", "(*Stack).input"),
		at("tcp/input.go", "(*Stack).input"), // same name, another package
		at("ip.go", "deliver"),
	}
	bad, stale := sortOut(found, map[string]bool{"(*Stack).input": true, "gone": true})
	if got, want := fmt.Sprint(bad), fmt.Sprint([]long{found[2], found[3]}); got != want {
		t.Errorf("bad = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(stale), "[gone]"; got != want {
		t.Errorf("stale = %s, want %s", got, want)
	}
}

// funcOfLines returns the source of a function or method (recv, if not
// "") named name whose declaration, from "func" to its closing brace, is n
// lines long, n >= 4.
func funcOfLines(recv, name string, n int) string {
	var b strings.Builder
	b.WriteString("// " + name + " is a function of " + fmt.Sprint(n) + " lines.\n")
	b.WriteString("func " + recv + name + "() int {\n\tx := 0\n")
	b.WriteString(strings.Repeat("\tx++\n", n-4))
	b.WriteString("\treturn x\n}\n\n")
	return b.String()
}

// TestLongFuncs runs the counter on a file of functions of 120 and 121
// lines: the 121-line ones, and only they, are reported, with their line
// and length; the same file marked generated reports nothing.
func TestLongFuncs(t *testing.T) {
	src := "package p\n\ntype T struct{}\n\n"
	var want []string
	for _, fn := range []struct {
		recv, name, reported string
		lines                int
	}{
		{"", "lines120", "", 120},
		{"", "lines121", "lines121", 121},
		{"(t *T) ", "lines120", "", 120},
		{"(t T) ", "lines121", "T.lines121", 121},
	} {
		if fn.reported != "" {
			// Its "func" comes after the source so far and its comment line.
			line := strings.Count(src, "\n") + 2
			want = append(want, fmt.Sprintf("long.go:%d: %s is %d lines (at most 120)", line, fn.reported, fn.lines))
		}
		src += funcOfLines(fn.recv, fn.name, fn.lines)
	}
	src += "func short() int { return 1 }\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "long.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range longFuncs(fset, f, maxLines) {
		got = append(got, l.String())
		if line := strings.Split(src, "\n")[l.pos.Line-1]; !strings.HasPrefix(line, "func ") {
			t.Errorf("%v: that line is %q, not a func", l, line)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("long functions:\n got %v\nwant %v", got, want)
	}

	gen := "// Code generated by hand for a test. DO NOT EDIT.\n\n" + src
	f, err = parser.ParseFile(fset, "generated.go", gen, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if l := longFuncs(fset, f, maxLines); len(l) != 0 {
		t.Errorf("a generated file reported %v", l)
	}
}

// TestLibraryFiles checks the walk: it takes library files and leaves out
// tests, testdata and the nested compare module.
func TestLibraryFiles(t *testing.T) {
	files, err := libraryFiles(root(t))
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, f := range files {
		has[filepath.ToSlash(f)] = true
		switch {
		case strings.HasSuffix(f, "_test.go"):
			t.Errorf("a test file is listed: %s", f)
		case strings.Contains(filepath.ToSlash(f), "testdata/"):
			t.Errorf("a testdata file is listed: %s", f)
		case strings.HasPrefix(filepath.ToSlash(f), "compare/"):
			t.Errorf("a file of the nested compare module is listed: %s", f)
		}
	}
	for _, want := range []string{"tcp/input.go", "admin/events.go", "cmd/synstack/forward.go"} {
		if !has[want] {
			t.Errorf("%s is not listed", want)
		}
	}
}
