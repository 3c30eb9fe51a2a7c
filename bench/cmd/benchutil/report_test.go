package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportCells(t *testing.T) {
	raw := strings.Join([]string{
		"memory\ttmpfs\ts6\tpss_kib@1\t639",
		"memory\ttmpfs\ts6\tpss_kib@1000\t125899",
		"bringup\text4\trunit\ttrial1_ms\t1500",
		"bringup\text4\trunit\ttrial2_ms\t4900",
		"bringup\text4\trunit\ttrial3_ms\t3100",
		"bringup\text4\tgosv\tnote\tnot built",
		"idle\ttmpfs\tsupervisord\tvol\t10",
		"idle\ttmpfs\tsupervisord\tnonvol\t2",
		"idle\ttmpfs\tsupervisord\twindow_s\t10",
		"idle\ttmpfs\tgosv\tvol\t0",
		"malformed line",
	}, "\n")
	res, err := readRaw(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeReport(&out, res)
	tests := []struct{ name, want string }{
		{"marginal = (PSS@1000 - PSS@1)/999", "| s6 | tmpfs | 639 | – | 125899 | 125.4 |"},
		{"bring-up median of three", "| runit | ext4 | 1500, 4900, 3100 | 3100.0 |"},
		{"note and missing cells", "| gosv | ext4 | – | – | – | not built |"},
		{"idle total and rate", "| 10 | 2 | 12 | 1.2 |"},
		{"reproduce command", "`bench/run.sh memory --systems s6 --fs tmpfs`"},
	}
	if i, j := strings.Index(out.String(), "| gosv | tmpfs | – | – | 0"), strings.Index(out.String(), "| supervisord | tmpfs"); i < 0 || j < 0 || i > j {
		t.Errorf("idle rows not in system order (gosv at %d, supervisord at %d):\n%s", i, j, out.String())
	}
	for _, tt := range tests {
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s: report lacks %q:\n%s", tt.name, tt.want, out.String())
		}
	}
}

func TestField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	status := "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n"
	if err := os.WriteFile(p, []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key     string
		want    int64
		wantErr bool
	}{
		{"voluntary_ctxt_switches:", 12, false},
		{"nonvoluntary_ctxt_switches:", 3, false},
		{"Pss:", 0, true},
	}
	for _, tt := range tests {
		got, err := field(p, tt.key)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("field(%q) = %d, %v; want %d, err %v", tt.key, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestReportScale(t *testing.T) {
	raw := strings.Join([]string{
		"scale\ttmpfs\tgosv\tmedian_ms@10/r1\t2",
		"scale\ttmpfs\tgosv\tmedian_ms@10/r2\t4",
		"scale\ttmpfs\tgosv\tmedian_ms@10/r3\t3",
		"scale\ttmpfs\tgosv\tmedian_ms@5000/r1\t6",
		"scale\ttmpfs\tgosv\tmedian_ms@5000/r2\t9",
		"scale\ttmpfs\tgosv\tbase_median_ms@10/r1\t1",
		"scale\ttmpfs\tgosv\tbase_median_ms@5000/r1\t1.5",
		"scale\ttmpfs\tgosv\tcpu_us_per_line@10/r1\t10",
		"scale\ttmpfs\tgosv\tcpu_us_per_line@5000/r1\t11",
		"scale\ttmpfs\tgosv\tmedian_ms\tnot a scale key",
	}, "\n")
	res, err := readRaw(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeReport(&out, res)
	for _, want := range []string{
		"| 10 | 3.00 [2, 3, 4] | 1.00 | 1.00 [1] | 1.00 | 10.00 [10] | 1.00 |",
		"| 5000 | 7.50 [6, 9] | 2.50 | 1.50 [1.5] | 1.50 | 11.00 [11] | 1.10 |",
		"`bench/run.sh scale --systems gosv --fs tmpfs`",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("scale report lacks %q:\n%s", want, out.String())
		}
	}
}
