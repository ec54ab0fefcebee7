package doccheck

import (
	"os/exec"
	"strings"
	"testing"
)

// The floors of the house (docs/architecture.md, "Packages and layers"):
// the engine never reaches up to the faces, the protocol never reaches
// its runtime or a link, and no library package links gVisor (only the
// compare module does).
func TestLayers(t *testing.T) {
	const mod = "github.com/synstack/synstack"
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "/internal/engine", []string{mod}},
		{mod + "/tcp", []string{mod, mod + "/internal/engine", mod + "/link"}},
	} {
		for _, d := range deps(c.pkg) {
			for _, f := range c.forbidden {
				if d == f {
					t.Errorf("%s imports %s (directly or not)", c.pkg, f)
				}
			}
		}
	}
	out, err := exec.Command("go", "list", "-deps", "../../...").Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, "gvisor.dev/") {
			t.Errorf("the module (not compare/) depends on %s", d)
		}
	}
}
