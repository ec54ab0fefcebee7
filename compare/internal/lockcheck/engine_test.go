package lockcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// misuse is a file added to the real engine (internal/engine, through a
// build overlay, so the tree is not touched): one call of a function
// annotated as needing its shard's lock, and one read of a shard's
// connection table, both without the lock.
const misuse = `package engine

// misuseCall re-arms a shard's timer without the shard's lock.
func misuseCall(s *Host) { s.shards[0].armLocked() }

// misuseField counts a shard's connections without the shard's lock.
func misuseField(s *Host) int { return s.shards[0].conns.len() }
`

// TestEngine runs the analyzer as .ci/checklocks does on the engine
// itself: unchanged it passes; with a misuse of its locks added it fails,
// naming the call and the field.
func TestEngine(t *testing.T) {
	bin := buildAnalyzer(t)
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	engine := filepath.Join(root, "internal", "engine")
	if _, err := os.Stat(engine); err != nil {
		t.Skip("no engine to check:", err)
	}
	args := append(slices.Clone(vetFlags), "./internal/engine/")

	t.Run("unchanged", func(t *testing.T) {
		if diags, failed := vetIn(t, bin, root, args...); failed || len(diags) > 0 {
			t.Errorf("go vet -vettool=checklocks ./internal/engine/ failed = %v, printed:\n\t%s", failed, strings.Join(diags, "\n\t"))
		}
	})

	t.Run("misuse", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "misuse.go")
		if err := os.WriteFile(src, []byte(misuse), 0o644); err != nil {
			t.Fatal(err)
		}
		overlay, err := json.Marshal(map[string]map[string]string{
			"Replace": {filepath.Join(engine, "misuse.go"): src},
		})
		if err != nil {
			t.Fatal(err)
		}
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			t.Fatal(err)
		}
		diags, failed := vetIn(t, bin, root, append([]string{"-overlay=" + ov}, args...)...)
		for i, d := range diags { // the overlay's file is named by its path in dir
			if _, after, ok := strings.Cut(d, string(filepath.Separator)+"misuse.go:"); ok {
				diags[i] = "misuse.go:" + after
			}
		}
		want := []string{
			`misuse.go:4:49: must hold sh.mu exclusively (&(*(&(*(&({param:s}.shards))[{*ssa.Const:0x?}])).mu)) to call armLocked, but not held (locks: no locks held)`,
			`misuse.go:7:52: invalid field access, mu (&(*(&(*(&({param:s}.shards))[{*ssa.Const:0x?}])).mu)) must be locked when accessing conns (locks: no locks held)`,
		}
		if !failed || !slices.Equal(diags, want) {
			t.Errorf("go vet -vettool=checklocks on the engine with misuse.go: failed = %v, printed:\n\t%s\nwant:\n\t%s",
				failed, strings.Join(diags, "\n\t"), strings.Join(want, "\n\t"))
		}
	})
}
