// Command charts draws bench/results.tsv as SVG bar charts (make
// bench-charts): one chart per chart id, one horizontal bar per row, and
// under the bars the date, machine and command of every figure, so that a
// chart never travels without what it measured.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// bar is one row of the data file.
type bar struct {
	Label, Unit, Date, Machine, Command string
	Value                               float64
}

// chart is the bars of one chart id, in file order.
type chart struct {
	ID, Title string
	Bars      []bar
}

func main() {
	data := flag.String("data", "bench/results.tsv", "the figures (tab-separated)")
	out := flag.String("out", "bench", "where chart-ID.svg files are written")
	flag.Parse()
	if err := run(*data, *out); err != nil {
		fmt.Fprintln(os.Stderr, "charts:", err)
		os.Exit(1)
	}
}

func run(data, out string) error {
	f, err := os.Open(data)
	if err != nil {
		return err
	}
	defer f.Close()
	charts, err := parse(f, data)
	if err != nil {
		return err
	}
	for _, c := range charts {
		if err := os.WriteFile(filepath.Join(out, "chart-"+c.ID+".svg"), []byte(render(c)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// parse reads the data file: blank lines and # comments are skipped, every
// other line has 8 tab-separated fields.
func parse(r io.Reader, name string) ([]*chart, error) {
	var charts []*chart
	byID := map[string]*chart{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 8 (chart, title, label, value, unit, date, machine, command)", name, n, len(f))
		}
		v, err := strconv.ParseFloat(f[3], 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s:%d: invalid value %q", name, n, f[3])
		}
		c := byID[f[0]]
		if c == nil {
			c = &chart{ID: f[0], Title: f[1]}
			byID[f[0]] = c
			charts = append(charts, c)
		} else if c.Title != f[1] {
			return nil, fmt.Errorf("%s:%d: chart %s has two titles: %q and %q", name, n, f[0], c.Title, f[1])
		}
		c.Bars = append(c.Bars, bar{Label: f[2], Value: v, Unit: f[4], Date: f[5], Machine: f[6], Command: f[7]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(charts) == 0 {
		return nil, fmt.Errorf("%s: no figures", name)
	}
	return charts, nil
}

// Layout, in SVG user units (pixels).
const (
	width     = 760
	labelW    = 260 // bar labels, right-aligned before the bars
	barMaxW   = 380
	rowH      = 26
	top       = 48
	noteLineH = 16
)

// render draws c. The longest bar spans barMaxW; the value and unit follow
// each bar. gosv's bars are drawn in a colour of their own.
func render(c *chart) string {
	maxV := 0.0
	for _, b := range c.Bars {
		maxV = max(maxV, b.Value)
	}
	var notes []string
	seen := map[string]bool{}
	for _, b := range c.Bars {
		n := b.Date + " · " + b.Machine + "\x00" + b.Command
		if !seen[n] {
			seen[n] = true
			notes = append(notes, b.Date+" · "+b.Machine, "$ "+b.Command)
		}
	}
	barsEnd := top + len(c.Bars)*rowH
	height := barsEnd + 20 + len(notes)*noteLineH + 10
	var s strings.Builder
	fmt.Fprintf(&s, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">
<title>%s</title>
<rect width="100%%" height="100%%" fill="#ffffff"/>
<text x="10" y="26" font-size="16" font-weight="bold">%s</text>
`, width, height, width, height, esc(c.Title), esc(c.Title))
	for i, b := range c.Bars {
		y := top + i*rowH
		w := 0.0
		if maxV > 0 {
			w = b.Value / maxV * barMaxW
		}
		fill := "#8da0b6"
		if strings.HasPrefix(b.Label, "gosv") {
			fill = "#2b6cb0"
		}
		value := strconv.FormatFloat(b.Value, 'f', -1, 64) + " " + b.Unit
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>
<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>
<text x="%.1f" y="%d">%s</text>
`, labelW-8, y+17, esc(b.Label), labelW, y+4, max(w, 1), rowH-8, fill, esc(b.Label), esc(value), float64(labelW)+max(w, 1)+6, y+17, esc(value))
	}
	for i, n := range notes {
		fmt.Fprintf(&s, "<text x=\"10\" y=\"%d\" font-size=\"11\" fill=\"#444444\">%s</text>\n", barsEnd+20+i*noteLineH, esc(n))
	}
	s.WriteString("</svg>\n")
	return s.String()
}

var esc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace
