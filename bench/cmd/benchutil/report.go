package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// A raw result line is "bench<TAB>fs<TAB>system<TAB>key<TAB>value"; run.sh's
// trials write them. The report groups them into one row per (system, fs).

type rowKey struct{ bench, system, fs string }

type results struct {
	order []rowKey
	vals  map[rowKey]map[string]string
}

func readRaw(r io.Reader) (*results, error) {
	res := &results{vals: map[rowKey]map[string]string{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 5)
		if len(f) != 5 {
			continue
		}
		k := rowKey{bench: f[0], fs: f[1], system: f[2]}
		if res.vals[k] == nil {
			res.vals[k] = map[string]string{}
			res.order = append(res.order, k)
		}
		res.vals[k][f[3]] = f[4]
	}
	return res, sc.Err()
}

// column is one table column: a header and how to compute the cell.
type column struct {
	head string
	cell func(v map[string]string) string
}

func key(k string) func(map[string]string) string {
	return func(v map[string]string) string { return v[k] }
}

func num(v map[string]string, k string) (float64, bool) {
	f, err := strconv.ParseFloat(v[k], 64)
	return f, err == nil
}

var benches = []struct {
	name, title, intro string
	cols               []column
}{
	{
		name:  "memory",
		title: "Memory: summed PSS of the supervisor's own processes",
		intro: "Services run `exec sleep 100000` and are excluded. Marginal = (PSS@1000 − PSS@1)/999. " +
			"gosv targets: ≤ 12 MiB at 1000 services, ≤ 10 KiB marginal per service.",
		cols: []column{
			{"PSS @1 (KiB)", key("pss_kib@1")},
			{"PSS @100 (KiB)", key("pss_kib@100")},
			{"PSS @1000 (KiB)", key("pss_kib@1000")},
			{"marginal (KiB/service)", func(v map[string]string) string {
				a, ok1 := num(v, "pss_kib@1")
				b, ok2 := num(v, "pss_kib@1000")
				if !ok1 || !ok2 {
					return ""
				}
				return fmt.Sprintf("%.1f", (b-a)/999)
			}},
			{"own procs @1000", key("procs@1000")},
		},
	},
	{
		name:  "restart",
		title: "Restart latency: SIGKILL of a service up > 2 s → first line of its new run script",
		intro: "The run script is bash: it appends `$$ $EPOCHREALTIME` without forking, then execs sleep; " +
			"the figure includes bash's own start-up (same for every system). " +
			"gosv's share is wait4 return → execve, from its trace when present. " +
			"baseline: no supervisor, the helper itself fork+execs the same script (the floor under every row).",
		cols: []column{
			{"samples", key("n")},
			{"median (ms)", key("median_ms")},
			{"p90 (ms)", key("p90_ms")},
			{"min (ms)", key("min_ms")},
			{"max (ms)", key("max_ms")},
			{"gosv share median (ms)", key("gosv_share_median_ms")},
		},
	},
	{
		name:  "bringup",
		title: "Bring-up: first `ln -s` of 100 service directories → 100th service running",
		intro: "s6 is triggered with `s6-svscanctl -a`, supervisord with `supervisorctl update`; runit and daemontools " +
			"rescan every 5 s on their own (the trials start at different phases of that period); gosv uses inotify; " +
			"OpenRC has no scan directory: the figure is 100 `supervise-daemon` starts in a row. " +
			"baseline: no supervisor, the helper fork+execs the 100 run scripts one after the other (the cost of process creation on this machine; its first-service column is meaningless). " +
			"gosv targets: ≤ 100 ms and ≤ 0.5× s6.",
		cols: []column{
			{"trials (ms)", func(v map[string]string) string {
				var ts []string
				for i := 1; v["trial"+strconv.Itoa(i)+"_ms"] != ""; i++ {
					ts = append(ts, v["trial"+strconv.Itoa(i)+"_ms"])
				}
				return strings.Join(ts, ", ")
			}},
			{"median (ms)", func(v map[string]string) string {
				var xs []float64
				for i := 1; ; i++ {
					x, ok := num(v, "trial"+strconv.Itoa(i)+"_ms")
					if !ok {
						break
					}
					xs = append(xs, x)
				}
				if len(xs) == 0 {
					return ""
				}
				sort.Float64s(xs)
				m := len(xs) / 2
				if len(xs)%2 == 0 {
					return fmt.Sprintf("%.1f", (xs[m-1]+xs[m])/2)
				}
				return fmt.Sprintf("%.1f", xs[m])
			}},
			{"first service, per trial (ms)", func(v map[string]string) string {
				var ts []string
				for i := 1; v["trial"+strconv.Itoa(i)+"_first_ms"] != ""; i++ {
					ts = append(ts, v["trial"+strconv.Itoa(i)+"_first_ms"])
				}
				return strings.Join(ts, ", ")
			}},
		},
	},
	{
		name:  "idle",
		title: "Idle: context switches of the supervisor's own processes (all threads), 10 s window, 100 services",
		intro: "The window starts 5 s after all 100 services are up.",
		cols: []column{
			{"own procs", key("procs")},
			{"threads", key("threads")},
			{"voluntary", key("vol")},
			{"involuntary", key("nonvol")},
			{"total", func(v map[string]string) string {
				a, ok1 := num(v, "vol")
				b, ok2 := num(v, "nonvol")
				if !ok1 || !ok2 {
					return ""
				}
				return fmt.Sprintf("%.0f", a+b)
			}},
			{"per second", func(v map[string]string) string {
				a, ok1 := num(v, "vol")
				b, ok2 := num(v, "nonvol")
				w, ok3 := num(v, "window_s")
				if !ok1 || !ok2 || !ok3 || w == 0 {
					return ""
				}
				return fmt.Sprintf("%.1f", (a+b)/w)
			}},
		},
	},
}

var systemOrder = []string{"baseline", "gosv", "s6", "runit", "daemontools", "openrc", "supervisord"}

func sysRank(s string) int {
	for i, x := range systemOrder {
		if x == s {
			return i
		}
	}
	return len(systemOrder)
}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	raw := fs.String("raw", "", "raw result file")
	machine := fs.String("machine", "", "markdown file with machine information")
	fs.Parse(args)
	f, err := os.Open(*raw)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := readRaw(f)
	if err != nil {
		return err
	}
	if *machine != "" {
		m, err := os.ReadFile(*machine)
		if err != nil {
			return err
		}
		os.Stdout.Write(m)
	}
	writeReport(os.Stdout, res)
	return nil
}

func writeReport(w io.Writer, res *results) {
	titled := false
	for _, k := range res.order {
		if k.bench != "scale" {
			continue
		}
		if !titled {
			fmt.Fprintf(w, "\n## %s\n\n%s\n", scaleTitle, scaleIntro)
			titled = true
		}
		writeScale(w, k, res.vals[k])
	}
	for _, b := range benches {
		var rows []rowKey
		for _, k := range res.order {
			if k.bench == b.name {
				rows = append(rows, k)
			}
		}
		if len(rows) == 0 {
			continue
		}
		// Trials may finish in any order (idle runs them side by side):
		// list rows by file system as first seen, then in systemOrder.
		fsRank := map[string]int{}
		for _, k := range rows {
			if _, ok := fsRank[k.fs]; !ok {
				fsRank[k.fs] = len(fsRank)
			}
		}
		sort.SliceStable(rows, func(i, j int) bool {
			if fsRank[rows[i].fs] != fsRank[rows[j].fs] {
				return fsRank[rows[i].fs] < fsRank[rows[j].fs]
			}
			return sysRank(rows[i].system) < sysRank(rows[j].system)
		})
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n", b.title, b.intro)
		head := []string{"system", "fs"}
		for _, c := range b.cols {
			head = append(head, c.head)
		}
		head = append(head, "note", "reproduce")
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
		for _, k := range rows {
			v := res.vals[k]
			cells := []string{k.system, k.fs}
			for _, c := range b.cols {
				s := c.cell(v)
				if s == "" {
					s = "–"
				}
				cells = append(cells, s)
			}
			cells = append(cells, v["note"], fmt.Sprintf("`bench/run.sh %s --systems %s --fs %s`", k.bench, k.system, k.fs))
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
	}
}
