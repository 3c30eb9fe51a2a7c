package inwait

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitSize(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string // appended by another goroutine after the wait starts
		size    int64
		wantErr error
	}{
		{"already there", nil, 0, nil},
		{"grows to size", []string{"x\n", "x\n"}, 4, nil},
		{"never grows enough", []string{"x\n"}, 4, ErrDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "marker")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				for _, w := range tt.writes {
					f.WriteString(w)
				}
			}()
			_, err := WaitSize(p, tt.size, time.Now().Add(500*time.Millisecond))
			<-done
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WaitSize = %v; want %v", err, tt.wantErr)
			}
		})
	}
}
