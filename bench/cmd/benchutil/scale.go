package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// The scale benchmark's raw keys are "NAME@N/rR": figure NAME of the trial
// with N idle services, repetition R. Its table has one row per N, with the
// median over repetitions, every repetition's figure (the spread), and the
// ratio to the smallest N.

const scaleTitle = "Scale: one restart and one in-process log line among N idle services"

const scaleIntro = "N services run `exec sleep` in the same tree; then the restart benchmark's 15 services are added and " +
	"measured as in restart (median of 30 samples per run), then 3000 lines are written one at a time into a " +
	"gosv service with a log-script, each after the previous one is in its log, and gosv svscan's CPU time " +
	"(every thread, schedstat) is divided by the lines. Runs are interleaved over N. " +
	"baseline at N: the restart row's baseline (the measuring helper fork+execs the same run script itself, " +
	"30 times) with the N idle services up and no other service yet: what the machine alone adds with N " +
	"more processes. " +
	"Targets: restart at 5000 within 1.3× of 10; CPU per log line flat."

// scaleFigures are the figures of the scale table, in column order.
var scaleFigures = []struct{ key, head string }{
	{"median_ms", "restart median (ms)"},
	{"base_median_ms", "baseline at N (ms)"},
	{"gosv_reap_median_ms", "kill→reap median (ms)"},
	{"gosv_share_median_ms", "gosv share median (ms)"},
	{"gosv_exec_median_ms", "clone→execve median (ms)"},
	{"cpu_us_per_line", "scanner CPU per log line (µs)"},
	{"rtt_us_per_line", "log line round trip (µs)"},
}

// scaleValues groups v's scale keys: figure → N → one value per repetition.
func scaleValues(v map[string]string) (map[string]map[int][]float64, []int) {
	out := map[string]map[int][]float64{}
	seen := map[int]bool{}
	for k, s := range v {
		name, rest, ok := strings.Cut(k, "@")
		if !ok {
			continue
		}
		nStr, _, _ := strings.Cut(rest, "/")
		n, err := strconv.Atoi(nStr)
		if err != nil {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		if out[name] == nil {
			out[name] = map[int][]float64{}
		}
		out[name][n] = append(out[name][n], x)
		seen[n] = true
	}
	var ns []int
	for n := range seen {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, byN := range out {
		for _, xs := range byN {
			sort.Float64s(xs)
		}
	}
	return out, ns
}

func median(xs []float64) float64 {
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}

// writeScale writes the scale table of one (system, fs) row of results.
func writeScale(w io.Writer, k rowKey, v map[string]string) {
	vals, ns := scaleValues(v)
	fmt.Fprintf(w, "\n### %s, %s (`bench/run.sh scale --systems %s --fs %s`)\n\n", k.system, k.fs, k.system, k.fs)
	if v["note"] != "" {
		fmt.Fprintf(w, "note: %s\n\n", v["note"])
	}
	head := []string{"N idle services"}
	for _, f := range scaleFigures {
		if vals[f.key] != nil {
			head = append(head, f.head+": median [each run]", "× N="+strconv.Itoa(ns[0]))
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for _, n := range ns {
		cells := []string{strconv.Itoa(n)}
		for _, f := range scaleFigures {
			byN := vals[f.key]
			if byN == nil {
				continue
			}
			xs := byN[n]
			if len(xs) == 0 {
				cells = append(cells, "–", "–")
				continue
			}
			var each []string
			for _, x := range xs {
				each = append(each, strconv.FormatFloat(x, 'f', -1, 64))
			}
			ratio := "–"
			if base := byN[ns[0]]; len(base) > 0 && median(base) > 0 {
				ratio = fmt.Sprintf("%.2f", median(xs)/median(base))
			}
			cells = append(cells, fmt.Sprintf("%.2f [%s]", median(xs), strings.Join(each, ", ")), ratio)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}
