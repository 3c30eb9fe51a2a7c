package svstat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Field is one value of s6-svstat's field mode, in the order of its table
// (abbreviations resolve to the first entry with the given prefix).
type Field int

const (
	Up          Field = iota // "true" iff pid && !finishing (-u)
	WantedUp                 // want-up flag (-w)
	NormallyUp               // no down file (-N)
	Ready                    // pid && ready flag: false when down-and-ready (-r)
	Paused                   // paused flag
	Pid                      // run pid if up, else -1 (-p)
	ExitCode                 // exit code if down and exited, else -1 (-e)
	Signal                   // "SIG"+name if down and killed, else "NA" (-s)
	Signum                   // signal number if down and killed, else -1
	UpdownSince              // "@" + TAI64N of the last up/down transition
	ReadySince               // "@" + TAI64N of the last readiness transition
	UpdownFor                // seconds since the last up/down transition (-t)
	ReadyFor                 // seconds since the last readiness transition
)

var fieldNames = [...]string{"up", "wantedup", "normallyup", "ready", "paused", "pid",
	"exitcode", "signal", "signum", "updownsince", "readysince", "updownfor", "readyfor"}

// MaxFields is s6-svstat's limit on the number of fields.
const MaxFields = 16

// Errors of field parsing (usage errors, exit 100) and of reading.
var (
	ErrTooManyFields = errors.New("too many option fields")
	ErrNullField     = errors.New("invalid null option field")
	// ErrNotRunning keeps s6-svstat's wording: scripts grep for it.
	ErrNotRunning = errors.New("s6-supervise not running")
)

// FieldError is an unknown field name given to -o.
type FieldError struct{ Name string }

func (e *FieldError) Error() string { return "invalid option field: " + e.Name }

// AppendField appends f, enforcing [MaxFields].
func AppendField(fields []Field, f Field) ([]Field, error) {
	if len(fields) >= MaxFields {
		return fields, ErrTooManyFields
	}
	return append(fields, f), nil
}

// AppendFields parses the argument of -o, a comma-separated list of field
// names or prefixes of them, and appends the fields in order. A trailing
// comma is allowed; an empty name is not.
func AppendFields(fields []Field, spec string) ([]Field, error) {
	for spec != "" {
		name, rest, _ := strings.Cut(spec, ",")
		if name == "" {
			return fields, ErrNullField
		}
		f, ok := lookup(name)
		if !ok {
			return fields, &FieldError{Name: name}
		}
		var err error
		if fields, err = AppendField(fields, f); err != nil {
			return fields, err
		}
		spec = rest
	}
	return fields, nil
}

func lookup(prefix string) (Field, bool) {
	for i, n := range fieldNames {
		if strings.HasPrefix(n, prefix) {
			return Field(i), true
		}
	}
	return 0, false
}

// Format selects the output: JSON, the given fields, or (neither) the
// legacy line. Numeric prints signal numbers in the legacy line (-n).
type Format struct {
	Fields  []Field
	Numeric bool
	JSON    bool
}

// Print reads dir's state and writes it to w in format f, one line. now is
// read after the status, as s6-svstat does. Errors are *os.PathError values;
// a directory without a running supervisor gives one wrapping
// [ErrNotRunning].
func Print(w io.Writer, dir string, f Format, now func() time.Time) error {
	st, normallyUp, err := Read(dir)
	if err != nil {
		return err
	}
	t := now()
	var line []byte
	switch {
	case f.JSON:
		line = JSONWith(dir, st, t, normallyUp, ReadExtras(dir))
	case len(f.Fields) > 0:
		line = []byte(Fields(st, t, normallyUp, f.Fields))
	default:
		line = []byte(Legacy(st, t, normallyUp, f.Numeric))
		if why := Explain(st, ReadState(dir), t, time.Local); why != "" {
			line = append(line, "; "+why...)
		}
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return &os.PathError{Op: "write to", Path: "stdout", Err: err}
	}
	return nil
}

// Read probes dir's supervise lock, then reads its status and whether the
// down file exists, as s6-svstat does.
func Read(dir string) (st servicedir.Status, normallyUp bool, err error) {
	running, err := servicedir.IsLocked(filepath.Join(dir, servicedir.LockPath))
	if err != nil {
		return st, false, &os.PathError{Op: "check", Path: dir, Err: cause(err)}
	}
	if !running {
		return st, false, &os.PathError{Op: "read status for", Path: dir, Err: ErrNotRunning}
	}
	if st, err = servicedir.ReadStatus(dir); err != nil {
		return st, false, &os.PathError{Op: "read status for", Path: dir, Err: cause(err)}
	}
	down := filepath.Join(dir, servicedir.DownFile)
	switch err := unix.Access(down, unix.F_OK); {
	case err == nil:
		return st, false, nil
	case errors.Is(err, unix.ENOENT):
		return st, true, nil
	default:
		return st, false, &os.PathError{Op: "access", Path: down, Err: err}
	}
}

// Legacy formats s6-svstat's default line (without the newline).
func Legacy(st servicedir.Status, now time.Time, normallyUp, numeric bool) string {
	st = clamp(st, now)
	var b strings.Builder
	up := st.Up()
	switch w := wstat(st.Wstat); {
	case up:
		fmt.Fprintf(&b, "up (pid %d) ", st.Pid)
	case w.signaled() && numeric:
		fmt.Fprintf(&b, "down (signal %d) ", w.termsig())
	case w.signaled():
		fmt.Fprintf(&b, "down (signal SIG%s) ", servicedir.SignalName(unix.Signal(w.termsig())))
	default:
		fmt.Fprintf(&b, "down (exitcode %d) ", w.exitStatus())
	}
	fmt.Fprintf(&b, "%d seconds", secondsSince(now, st.Stamp))
	addIf := func(cond bool, s string) {
		if cond {
			b.WriteString(s)
		}
	}
	addIf(up && !normallyUp, ", normally down")
	addIf(!up && normallyUp, ", normally up")
	addIf(up && st.Paused, ", paused")
	addIf(!up && st.WantUp, ", want up")
	addIf(up && !st.WantUp, ", want down")
	if st.Ready {
		fmt.Fprintf(&b, ", ready %d seconds", secondsSince(now, st.ReadyStamp))
	}
	return b.String()
}

// Fields formats the field mode: values separated by one space.
func Fields(st servicedir.Status, now time.Time, normallyUp bool, fields []Field) string {
	st = clamp(st, now)
	vals := make([]string, len(fields))
	for i, f := range fields {
		vals[i] = field(st, now, normallyUp, f)
	}
	return strings.Join(vals, " ")
}

func field(st servicedir.Status, now time.Time, normallyUp bool, f Field) string {
	up, w := st.Up(), wstat(st.Wstat)
	switch f {
	case Up:
		return strconv.FormatBool(up)
	case WantedUp:
		return strconv.FormatBool(st.WantUp)
	case NormallyUp:
		return strconv.FormatBool(normallyUp)
	case Ready:
		return strconv.FormatBool(st.Pid != 0 && st.Ready)
	case Paused:
		return strconv.FormatBool(st.Paused)
	case Pid:
		if up {
			return strconv.Itoa(st.Pid)
		}
		return "-1"
	case ExitCode:
		if up || !w.exited() {
			return "-1"
		}
		return strconv.Itoa(w.exitStatus())
	case Signal:
		if up || !w.signaled() {
			return "NA"
		}
		return "SIG" + servicedir.SignalName(unix.Signal(w.termsig()))
	case Signum:
		if up || !w.signaled() {
			return "-1"
		}
		return strconv.Itoa(w.termsig())
	case UpdownSince:
		return servicedir.TAI64NFromTime(st.Stamp).String()
	case ReadySince:
		return servicedir.TAI64NFromTime(st.ReadyStamp).String()
	case UpdownFor:
		return strconv.FormatUint(secondsSince(now, st.Stamp), 10)
	case ReadyFor:
		return strconv.FormatUint(secondsSince(now, st.ReadyStamp), 10)
	}
	panic(fmt.Sprintf("svstat: unknown field %d", f))
}

// jsonV1 is the gosv-only `svstat --json` object. Fields are only ever
// added; a change of meaning bumps Version.
type jsonV1 struct {
	Version       int     `json:"version"`
	Dir           string  `json:"dir"`
	Up            bool    `json:"up"`
	Pid           *int    `json:"pid"` // run pid while up, else null
	Ready         bool    `json:"ready"`
	WantUp        bool    `json:"want_up"`
	NormallyUp    bool    `json:"normally_up"`
	Paused        bool    `json:"paused"`
	Finishing     bool    `json:"finishing"`
	Since         string  `json:"since"`
	ReadySince    string  `json:"ready_since"`
	ExitCode      *int    `json:"exit_code"` // down and exited, else null
	Signal        *string `json:"signal"`    // down and killed ("SIGTERM"), else null
	UpdownSeconds uint64  `json:"updown_seconds"`
	StatusText    *string `json:"status_text"`  // sd_notify STATUS= of the current run, else null
	CheckOutput   *string `json:"check_output"` // output of the last failed ./check of the current run, else null
	// Explain says why the service is not up or not healthy (Explain);
	// Policy and Health are supervise/gosv/policy and health as they are.
	Explain string                  `json:"explain,omitempty"`
	Policy  *servicedir.PolicyState `json:"policy,omitempty"`
	Health  *servicedir.HealthState `json:"health,omitempty"`
}

// JSON formats the gosv-only JSON object (without the newline). Its
// booleans and nulls follow the field mode: ready is "-o ready", pid is
// "-o pid", exit_code is "-o exitcode" and signal is "-o signal".
func JSON(dir string, st servicedir.Status, now time.Time, normallyUp bool) []byte {
	return JSONWith(dir, st, now, normallyUp, Extras{})
}

// Extras are the gosv-only state files shown by `svstat --json`
// (PROTOCOL.md §9.2); empty strings print as null.
type Extras struct {
	StatusText  string
	CheckOutput string
	State       State // supervise/gosv/policy and health (§9.6)
}

// ReadExtras reads dir's gosv-only state files; missing files are empty.
func ReadExtras(dir string) Extras {
	return Extras{
		StatusText:  strings.TrimRight(servicedir.ReadStatusText(dir), "\n"),
		CheckOutput: strings.TrimRight(servicedir.ReadCheckOutput(dir), "\n"),
		State:       ReadState(dir),
	}
}

// JSONWith is [JSON] with the gosv-only extras.
func JSONWith(dir string, st servicedir.Status, now time.Time, normallyUp bool, ex Extras) []byte {
	st = clamp(st, now)
	up, w := st.Up(), wstat(st.Wstat)
	j := jsonV1{
		Version: 1, Dir: dir, Up: up, Ready: st.Pid != 0 && st.Ready,
		WantUp: st.WantUp, NormallyUp: normallyUp, Paused: st.Paused, Finishing: st.Finishing,
		Since:         st.Stamp.UTC().Format(time.RFC3339Nano),
		ReadySince:    st.ReadyStamp.UTC().Format(time.RFC3339Nano),
		UpdownSeconds: secondsSince(now, st.Stamp),
	}
	if ex.StatusText != "" {
		j.StatusText = &ex.StatusText
	}
	if ex.CheckOutput != "" {
		j.CheckOutput = &ex.CheckOutput
	}
	j.Policy, j.Health = ex.State.Policy, ex.State.Health
	j.Explain = Explain(st, ex.State, now, time.Local)
	switch {
	case up:
		j.Pid = &st.Pid
	case w.signaled():
		sig := "SIG" + servicedir.SignalName(unix.Signal(w.termsig()))
		j.Signal = &sig
	case w.exited():
		code := w.exitStatus()
		j.ExitCode = &code
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic("svstat: marshal: " + err.Error()) // only strings, ints and bools
	}
	return b
}

// clamp replaces a stamp in the future by now, as s6-svstat does. The
// ready stamp is deliberately left alone: s6-svstat does not clamp it, and
// prints a future one as about 1.8e19 seconds.
func clamp(st servicedir.Status, now time.Time) servicedir.Status {
	if st.Stamp.After(now) {
		st.Stamp = now
	}
	return st
}

// secondsSince is skalibs' tain_sub truncated to seconds: unsigned, so a
// time in the future wraps around instead of going negative.
func secondsSince(now, t time.Time) uint64 {
	s := uint64(now.Unix()) - uint64(t.Unix())
	if now.Nanosecond() < t.Nanosecond() {
		s--
	}
	return s
}

// wstat decodes a raw Linux wait status with the <sys/wait.h> macros.
type wstat uint16

func (w wstat) termsig() int    { return int(w & 0x7f) }
func (w wstat) exitStatus() int { return int(w>>8) & 0xff }
func (w wstat) exited() bool    { return w.termsig() == 0 }
func (w wstat) signaled() bool  { return w.termsig() != 0 && w.termsig() != 0x7f }

// cause strips an *os.PathError so that the error names dir only once.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrPermission) {
			// Name the file refused: with group control (PROTOCOL.md
			// §9.7) it tells which permission is missing.
			return fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		return pe.Err
	}
	return err
}
