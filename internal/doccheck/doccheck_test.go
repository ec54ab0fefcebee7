package doccheck

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root returns the repository's root: the test runs in internal/doccheck,
// two levels below go.mod.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("the repository's root is not two levels up: %v", err)
	}
	return dir
}

var (
	// inlineLink is [text](target) and ![alt](target), with an optional
	// "title" after the target.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef is a reference definition: [id]: target.
	refDef = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// htmlRef is href="..." or src="..." in inline HTML.
	htmlRef = regexp.MustCompile(`\b(?:href|src)\s*=\s*"([^"]*)"`)
	// codeSpan is `code`; a Markdown file named in one is checked too.
	codeSpan = regexp.MustCompile("`([^`]+)`")
	// heading is an ATX heading.
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	// scheme starts a URL: http:, https:, mailto:, file:...
	scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// ref is one link of a Markdown file.
type ref struct {
	line   int
	target string
	code   bool // a file named in a code span, not a link
}

// doc is what the checks need of one Markdown file.
type doc struct {
	refs    []ref
	anchors map[string]bool // the ids of its headings, as GitHub makes them
}

// parse reads a Markdown file: its links outside fenced code blocks, the
// Markdown files its code spans name, and its headings' anchors.
func parse(path string) (doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return doc{}, err
	}
	defer f.Close()
	d := doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	prevBlank, inCode := true, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence, inCode = trimmed[:3], false
			continue
		}
		indented := strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")
		if indented && (prevBlank || inCode) {
			// An indented code block: it starts after a blank line
			// (an indented line that continues a paragraph or a list
			// item is text).
			inCode = true
			continue
		}
		inCode = inCode && (indented || trimmed == "")
		prevBlank = trimmed == ""
		if m := heading.FindStringSubmatch(line); m != nil {
			a := anchor(m[1])
			if k := seen[a]; k > 0 {
				d.anchors[fmt.Sprintf("%s-%d", a, k)] = true
			} else {
				d.anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			if s := m[1]; strings.HasSuffix(s, ".md") && !strings.ContainsAny(s, " *") {
				d.refs = append(d.refs, ref{n, s, true})
			}
		}
		text := codeSpan.ReplaceAllString(line, "``")
		for _, re := range []*regexp.Regexp{inlineLink, refDef, htmlRef} {
			for _, m := range re.FindAllStringSubmatch(text, -1) {
				d.refs = append(d.refs, ref{n, m[1], false})
			}
		}
	}
	return d, sc.Err()
}

// anchor is the id GitHub gives a heading: lower case, code and emphasis
// marks and punctuation dropped, spaces made hyphens.
func anchor(title string) string {
	title = inlineLink.ReplaceAllStringFunc(title, func(s string) string {
		return s[strings.Index(s, "[")+1 : strings.Index(s, "]")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markdown returns the repository's Markdown files, relative to root.
func markdown(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// check returns what is wrong with one reference of file (relative to
// root), or "".
func check(root, file string, r ref, docs map[string]doc) string {
	target := r.target
	switch {
	case scheme.MatchString(target):
		return "leaves the repository (a URL)"
	case strings.HasPrefix(target, "/"):
		return "leaves the repository (an absolute path)"
	}
	path, frag, _ := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	dest := file
	if path != "" {
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if r.code {
			// A file named in code may be relative to the file or to
			// the repository's root.
			if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
				dest = filepath.Clean(filepath.FromSlash(path))
			}
		}
		if dest == ".." || strings.HasPrefix(dest, ".."+string(filepath.Separator)) {
			return "leaves the repository"
		}
		if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
			return "points at a file that is not in the repository"
		}
	}
	if frag == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	d, ok := docs[filepath.ToSlash(dest)]
	if !ok {
		return ""
	}
	if !d.anchors[frag] {
		return fmt.Sprintf("points at a heading %q that %s does not have", frag, filepath.ToSlash(dest))
	}
	return ""
}

// Every link of every Markdown file stays in the repository and reaches a
// file (and heading) that is there; so does every Markdown file a code
// span names.
func TestLinks(t *testing.T) {
	root := root(t)
	files := markdown(t, root)
	if len(files) < 5 {
		t.Fatalf("found %d Markdown files under %s: %v", len(files), root, files)
	}
	docs := map[string]doc{}
	for _, f := range files {
		d, err := parse(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.ToSlash(f)] = d
	}
	links := 0
	for _, f := range files {
		for _, r := range docs[filepath.ToSlash(f)].refs {
			links++
			if why := check(root, f, r, docs); why != "" {
				t.Errorf("%s:%d: %s %s", filepath.ToSlash(f), r.line, r.target, why)
			}
		}
	}
	t.Logf("%d Markdown files, %d links", len(files), links)
}

// The checks find what they are for.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"README.md":   "# Top\n\n## A heading, with `code`\n",
		"docs/one.md": "# One\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	docs := map[string]doc{}
	for _, f := range []string{"README.md", "docs/one.md"} {
		d, err := parse(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = d
	}
	for _, c := range []struct {
		file, target string
		code, bad    bool
	}{
		{"README.md", "docs/one.md", false, false},
		{"README.md", "docs/one.md#one", false, false},
		{"README.md", "#a-heading-with-code", false, false},
		{"docs/one.md", "../README.md#top", false, false},
		{"docs/one.md", "docs/one.md", true, false}, // from the root
		{"README.md", "#no-such-heading", false, true},
		{"README.md", "docs/two.md", false, true},
		{"README.md", "../shared/DESIGN.md", false, true},
		{"README.md", "../shared/DESIGN.md", true, true},
		{"docs/one.md", "/work/shared/PACKET-SCRIPTS.md", true, true},
		{"README.md", "https://example.com/", false, true},
	} {
		why := check(dir, filepath.FromSlash(c.file), ref{1, c.target, c.code}, docs)
		if (why != "") != c.bad {
			t.Errorf("%s -> %s (code %v): %q, want bad %v", c.file, c.target, c.code, why, c.bad)
		}
	}
	links := map[string]bool{}
	d, err := func() (doc, error) {
		p := filepath.Join(dir, "links.md")
		text := "[a](x.md) ![b](img/y.svg \"title\") `not [c](z.md)` <a href=\"h.md\">h</a>\n[ref]: r.md\n```\n[d](fenced.md)\n```\n`named.md` `a path/with space.md`\n" +
			"- a list item\n    [continued](cont.md)\n\n    [indented code](code.md)\n"
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return doc{}, err
		}
		return parse(p)
	}()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.refs {
		links[fmt.Sprintf("%s %v", r.target, r.code)] = true
	}
	want := map[string]bool{"x.md false": true, "img/y.svg false": true, "h.md false": true, "r.md false": true, "named.md true": true, "cont.md false": true}
	if fmt.Sprint(links) != fmt.Sprint(want) {
		t.Errorf("links found: %v, want %v", links, want)
	}
}
