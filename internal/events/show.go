package events

import (
	"context"
	"io"
	"slices"
)

// ShowOptions is what `gosv events` was asked.
type ShowOptions struct {
	Dir      string   // a scan directory, or a directory run by gosv supervise
	Follow   bool     // -f: keep printing what is appended
	JSON     bool     // --json: the log's lines as they are
	Services []string // only these services; none: all
	Out      io.Writer
}

// Show prints the events log of o.Dir: one line per event, in words or as
// JSON, oldest first.
func Show(ctx context.Context, o ShowOptions) error {
	dir, err := LogDir(o.Dir)
	if err != nil {
		return err
	}
	rd := &Reader{Dir: dir, Each: func(r *Record, line []byte) error {
		if o.JSON {
			_, err := o.Out.Write(line)
			return err
		}
		_, err := io.WriteString(o.Out, r.Text()+"\n")
		return err
	}}
	if len(o.Services) > 0 {
		rd.Want = func(r *Record) bool {
			return slices.Contains(o.Services, r.Service)
		}
	}
	if o.Follow {
		return rd.Follow(ctx)
	}
	return rd.ReadAll()
}
