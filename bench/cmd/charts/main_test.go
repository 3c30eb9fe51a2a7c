package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCharts renders bench/results.tsv and checks each chart: well-formed
// XML, an svg root, every bar's label and value, and the date, machine and
// command of every figure; and that the committed bench/chart-*.svg are
// what the data gives (make bench-charts after editing results.tsv).
func TestCharts(t *testing.T) {
	data := filepath.Join("..", "..", "results.tsv")
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	charts, err := parse(f, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"memory", "restart", "bringup", "openrc-start"} {
		found := false
		for _, c := range charts {
			found = found || c.ID == id
		}
		if !found {
			t.Errorf("results.tsv has no %s chart", id)
		}
	}
	out := t.TempDir()
	if err := run(data, out); err != nil {
		t.Fatal(err)
	}
	for _, c := range charts {
		name := "chart-" + c.ID + ".svg"
		svg, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		text := wellFormed(t, name, svg)
		for _, b := range c.Bars {
			for _, want := range []string{b.Label, strconv.FormatFloat(b.Value, 'f', -1, 64) + " " + b.Unit, b.Date, b.Machine, b.Command} {
				if !strings.Contains(text, want) {
					t.Errorf("%s: no %q in its text", name, want)
				}
			}
		}
		committed, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil || !bytes.Equal(committed, svg) {
			t.Errorf("bench/%s is stale or missing: run make bench-charts", name)
		}
	}
}

// wellFormed parses svg as XML and returns its character data.
func wellFormed(t *testing.T, name string, svg []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	var text strings.Builder
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", name, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Space + " " + tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Errorf("%s: root element %q, want svg", name, root)
	}
	return text.String()
}

// TestParseErrors: a bad line names the file, the line and the cause.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\tb\tc\n", "x.tsv:1: 3 fields, want 8"},
		{"# c\nm\tT\tgosv\tx\tms\td\tm\tc\n", `x.tsv:2: invalid value "x"`},
		{"m\tT\tgosv\t1\tms\td\tm\tc\nm\tU\ts6\t1\tms\td\tm\tc\n", "x.tsv:2: chart m has two titles"},
		{"# only comments\n", "x.tsv: no figures"},
	} {
		_, err := parse(strings.NewReader(tc.in), "x.tsv")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}
