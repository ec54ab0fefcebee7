package wgbench_test

import (
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/compare/internal/wgbench"
	"github.com/synstack/synstack/contrib/wireguard/wgtest"
)

var (
	runBench = flag.Bool("synstack.wgbench", false, "run TestWireGuardBench (about a minute)")
	rounds   = flag.Int("synstack.wgbench.rounds", 3, "rounds of TestWireGuardBench; each figure is the median")
	only     = flag.String("synstack.wgbench.only", "", "measure only the figures whose name matches this regular expression")
)

// TestEndToEndGVisor is contrib/wireguard's TestEndToEndSynstack with
// wireguard-go's own netstack (gVisor) behind the second device: the same
// harness, so the scenario is the same (256 MiB; 16 MiB with -short or
// -race, see wgtest.FetchSize).
func TestEndToEndGVisor(t *testing.T) {
	if err := wgtest.NeedTools(); err != nil {
		t.Skip("skipped: ", err)
	}
	if !wgtest.InNamespace(t, 10*time.Minute, wgtest.ChildArgs()...) {
		return
	}
	wgtest.EndToEnd(t, wgbench.GVisor, wgtest.FetchSize())
}

// TestWireGuardBench measures wireguard-go with synstack's netstack and
// with its own gVisor netstack side by side, in one run: each round sets
// up each tunnel in turn (the first alternating), measures every figure
// on it and takes it down; each figure is the median of the rounds. It
// prints the table of docs/performance.md.
func TestWireGuardBench(t *testing.T) {
	if !*runBench {
		t.Skip("skipped: a benchmark; run with -synstack.wgbench")
	}
	if !wgtest.InNamespace(t, 15*time.Minute, wgtest.ChildArgs("synstack.wgbench")...) {
		return
	}
	stacks := []struct {
		name string
		f    wgtest.Factory
	}{{"synstack", wgtest.Synstack}, {"gVisor", wgbench.GVisor}}
	all := make([][][]float64, len(stacks)) // [stack][figure][round]
	for i := range all {
		all[i] = make([][]float64, len(wgbench.Figures))
	}
	for r := range *rounds {
		for k := range stacks {
			i := (k + r) % len(stacks)
			tn, err := wgtest.Up(stacks[i].f, fmt.Sprintf("wgb%d%d", r, i))
			if err != nil {
				t.Fatal(err)
			}
			for j, fig := range wgbench.Figures {
				if !match(fig.Name) {
					continue
				}
				v, err := fig.Run(tn)
				if err != nil {
					tn.Close()
					t.Fatalf("round %d, %s: %s: %v", r+1, stacks[i].name, fig.Name, err)
				}
				t.Logf("round %d, %s: %s: %.0f", r+1, stacks[i].name, fig.Name, v)
				if tn.Stack.Counters != nil {
					t.Logf("  %s", tn.Stack.Counters())
				}
				all[i][j] = append(all[i][j], v)
			}
			tn.Close()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| figure (median of %d rounds) | synstack | gVisor | synstack / gVisor |\n|---|---:|---:|---:|\n", *rounds)
	for j, fig := range wgbench.Figures {
		if !match(fig.Name) {
			continue
		}
		s, g := median(all[0][j]), median(all[1][j])
		ratio := s / g
		if !fig.HigherBetter {
			ratio = g / s // how many times less synstack needs
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2f |\n", fig.Name, s, g, ratio)
	}
	fmt.Fprint(os.Stdout, "\n"+b.String())
}

// match reports whether -synstack.wgbench.only selects the figure name.
func match(name string) bool {
	return *only == "" || regexp.MustCompile(*only).MatchString(name)
}

// median returns the median of xs (the mean of the middle two for an
// even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
