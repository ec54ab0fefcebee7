package lockcheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// analyzer is the package .ci/checklocks builds, and vetFlags the flags
// it runs it with.
const analyzer = "gvisor.dev/gvisor/tools/checklocks/cmd/checklocks"

var vetFlags = []string{"-inferred=false"}

// buildAnalyzer builds the analyzer into a temporary directory.
func buildAnalyzer(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the analyzer with:", err)
	}
	bin := filepath.Join(t.TempDir(), "checklocks")
	if out, err := exec.Command("go", "build", "-o", bin, analyzer).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", analyzer, err, out)
	}
	return bin
}

// address is a pointer the analyzer prints in some diagnostics, which
// differs from run to run.
var address = regexp.MustCompile(`0x[0-9a-f]+`)

// vet runs go vet with the analyzer on ./testdata/pkg and returns its
// diagnostics, addresses masked, sorted (the analyzer's order follows map
// iteration), and whether vet failed.
func vet(t *testing.T, bin, pkg string, flags ...string) (diags []string, failed bool) {
	t.Helper()
	return vetIn(t, bin, "", append(flags, "./testdata/"+pkg)...)
}

// vetIn runs go vet with the analyzer and args in dir (the current
// directory if empty), as vet does.
func vetIn(t *testing.T, bin, dir string, args ...string) (diags []string, failed bool) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"vet", "-vettool=" + bin}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("go vet: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		diags = append(diags, address.ReplaceAllString(line, "0x?"))
	}
	slices.Sort(diags)
	return diags, err != nil
}

// TestAnalyzer runs the analyzer on each package in testdata and compares
// its diagnostics with the lines it must print, exactly: a package whose
// list is empty must pass vet, any other must fail it.
func TestAnalyzer(t *testing.T) {
	bin := buildAnalyzer(t)
	for _, tc := range []struct {
		pkg   string
		flags []string
		want  []string
	}{
		{pkg: "good", flags: vetFlags},
		{pkg: "bad", flags: vetFlags, want: []string{
			`testdata/bad/bad.go:11:12: must hold sh.mu exclusively (&(*(&(*(&({param:h}.Shards))[{*ssa.Const:0x?}])).mu)) to call AddConn, but not held (locks: no locks held)`,
			`testdata/bad/bad.go:12:12: invalid field access, mu (&(*(&(*(&({param:h}.Shards))[{*ssa.Const:0x?}])).mu)) must be locked when accessing Conns (locks: no locks held)`,
		}},
		{pkg: "patterns", flags: vetFlags, want: []string{
			`-: return with unexpected locks held (locks: &(*(&({param:ep}.sh)).mu) exclusively)`,
			`-: return with unexpected locks held (locks: &({param:sh}.mu) exclusively)`,
			`-: return with unexpected locks held (locks: &({param:sh}.mu) exclusively)`,
			`testdata/patterns/acquire.go:44:16: incompatible return states (first: no locks held, second: &({param:h}.ctl) exclusively)`,
			`testdata/patterns/acquire.go:46:3: lock h.ctl (&({param:h}.ctl)) not held exclusively (locks: no locks held)`,
			`testdata/patterns/allshards.go:18:24: &(*(&(*(&({param:h}.shards))[{*ssa.Phi:0x?}])).mu) already unlocked or locked differently (locks: no locks held)`,
			`testdata/patterns/allshards.go:57:12: invalid field access, mu (&(*(&(*(&({param:h}.shards))[{*ssa.BinOp:0x?}])).mu)) must be locked when accessing conns (locks: no locks held)`,
			`testdata/patterns/atomic.go:33:4: illegal use of atomic-only field by *ssa.Store instruction`,
			`testdata/patterns/atomic.go:33:4: illegal use of atomic-only field by *ssa.UnOp instruction`,
			`testdata/patterns/atomic.go:33:4: non-atomic write of field orphans, writes must still be atomic with locks held (locks: no locks held)`,
			`testdata/patterns/atomic.go:34:20: unexpected call to atomic write function, is a lock missing?`,
			`testdata/patterns/atomic.go:35:18: unexpected call to atomic function`,
			`testdata/patterns/closure.go:28:25: invalid field access, mu (&({param:sh}.mu)) must be locked when accessing conns (locks: no locks held)`,
			`testdata/patterns/closure.go:46:16: invalid field access, ctl (&({freevar:h}.ctl)) must be locked when accessing listeners (locks: no locks held)`,
			`testdata/patterns/closure.go:56:16: invalid field access, ctl (&({freevar:h}.ctl)) must be locked when accessing listeners (locks: no locks held)`,
			`testdata/patterns/closure.go:72:3: return with unexpected locks held (locks: &({freevar:h}.ctl) exclusively)`,
			`testdata/patterns/fieldlist.go:17:44: invalid field access, mu (&({param:f}.mu)) must be locked when accessing b (locks: no locks held)`,
			`testdata/patterns/handover.go:18:18: &({freevar:held}.mu) already unlocked or locked differently (locks: no locks held)`,
			`testdata/patterns/handover.go:24:19: &(*({*ssa.Alloc:0x?}).mu) already unlocked or locked differently (locks: no locks held)`,
			`testdata/patterns/order.go:29:10: must not hold h.ctl (&({param:h}.ctl)) to call listen, but held (locks: &({param:h}.ctl) exclusively)`,
			`testdata/patterns/generic.go:21:11: invalid field access, mu (&({param:b}.mu)) must be locked when accessing v (locks: no locks held)`,
			`testdata/patterns/generic.go:36:22: must hold h.ctl exclusively (&({param:h}.ctl)) to call listenerCount, but not held (locks: no locks held)`,
			`testdata/patterns/ptrfield.go:21:12: must hold ep.sh.mu exclusively (&(*(&({param:ep}.sh)).mu)) to call advance, but not held (locks: no locks held)`,
			`testdata/patterns/ptrfield.go:32:12: must hold ep.sh.mu exclusively (&(*(&({param:ep}.sh)).mu)) to call advance, but not held (locks: &({param:sh}.mu) exclusively)`,
			`testdata/patterns/twolocks.go:24:10: must hold sh.mu exclusively (&({param:sh}.mu)) to call attach, but not held (locks: &({param:h}.ctl) exclusively)`,
		}},
		// With the inferred hints on (the analyzer's default), a field
		// guarded through a pointer and used as annotated draws one.
		{pkg: "inferred", want: []string{
			`testdata/inferred/inferred.go:17:2: may require checklocks annotation for mu, used with lock held 100% of the time`,
		}},
		{pkg: "inferred", flags: vetFlags},
	} {
		t.Run(strings.Join(append([]string{tc.pkg}, tc.flags...), ""), func(t *testing.T) {
			got, failed := vet(t, bin, tc.pkg, tc.flags...)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("go vet -vettool=checklocks %s ./testdata/%s printed:\n\t%s\nwant:\n\t%s",
					strings.Join(tc.flags, " "), tc.pkg, strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
			if failed != (len(tc.want) > 0) {
				t.Errorf("go vet failed = %v, want %v", failed, len(tc.want) > 0)
			}
		})
	}
}

// TestScript checks that .ci/checklocks builds the analyzer this test
// builds and runs it with the same flags.
func TestScript(t *testing.T) {
	script, err := os.ReadFile("../../../.ci/checklocks")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"build -o \"$tmp/checklocks\" " + analyzer}, vetFlags...) {
		if !strings.Contains(string(script), want) {
			t.Errorf(".ci/checklocks does not contain %q", want)
		}
	}
}

// TestMultiNameFields checks that the field-list pitfall in
// testdata/patterns is found, and nothing in the regime that avoids it.
func TestMultiNameFields(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{dir: "testdata/good"},
		{dir: "testdata/patterns", want: []string{
			"testdata/patterns/fieldlist.go:10:2: a, b declared on one line in a struct with lock annotations: " +
				"declare one field per line, or checklocks puts the annotations after it on the wrong fields",
		}},
	} {
		got, err := MultiNameFields(tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("MultiNameFields(%s) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}
