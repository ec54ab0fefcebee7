package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as one table: a row per figure, a column
// per kind, and the ratios synstack/gVisor and synstack/kernel. Missing
// values (not applicable, or failed) print as "n/a"; the versions and the
// load of the machine follow.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tunit\tsynstack\tgvisor\tkernel\tsynstack/gvisor\tsynstack/kernel\t")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Name, f.Unit,
			value(f.Synstack), value(f.GVisor), value(f.Kernel), ratio(f.SynstackOverGVisor), ratio(f.SynstackOverKernel))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	v := r.Versions
	commit := v.SynstackCommit
	if commit == "" {
		commit = "commit unknown"
	} else if v.SynstackDirty {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "\nsynstack %s %s; gVisor %s; %s; %s\n", v.Synstack, commit, v.GVisor, v.Kernel, v.Go)
	m := r.Machine
	fmt.Fprintf(w, "%s/%s, %d CPUs, GOMAXPROCS %d; load average %s before, %s after; %d s\n",
		m.GOOS, m.GOARCH, m.CPUs, m.GOMAXPROCS, m.LoadBefore, m.LoadAfter, m.DurationSec)
	notes := []string{}
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, f.Name+": "+f.Note)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "notes: %s\n", strings.Join(notes, "; "))
	}
	if r.Rounds > 1 {
		fmt.Fprintf(w, "bulk, multibulk, connsetup, pingpong, udp: the median of %d rounds, the kinds measured in turn in each\n", r.Rounds)
	}
	if r.Quick {
		fmt.Fprintln(w, "--quick: short measurements, a check that everything runs, not figures to quote")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

func value(v *float64) string {
	switch {
	case v == nil:
		return "n/a"
	case *v >= 100:
		return fmt.Sprintf("%.0f", *v)
	case *v >= 1:
		return fmt.Sprintf("%.2f", *v)
	}
	return fmt.Sprintf("%.3f", *v)
}

func ratio(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", *v)
}
