package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/gosv/gosv/initd"
)

func TestNewInitCmd(t *testing.T) {
	tests := []struct {
		argv []string
		want initOptions
		err  string
	}{
		{[]string{"sv"}, initOptions{Dir: "sv", Kill: initd.DefaultKill, NotifyFd: -1}, ""},
		{[]string{"-1", "/s/1", "-3", "/s/3", "-t", "250", "-d", "3", "sv", "--", "app", "-x", "--", "y"},
			initOptions{Stage1: "/s/1", Stage3: "/s/3", Kill: 250 * time.Millisecond, NotifyFd: 3, Dir: "sv",
				Main: []string{"app", "-x", "--", "y"}}, ""},
		{[]string{"-t", "0", "sv", "--", "app"}, initOptions{Dir: "sv", NotifyFd: -1, Main: []string{"app"}}, ""},
		{[]string{"--", "sv", "--", "-app"}, initOptions{Dir: "sv", Kill: initd.DefaultKill, NotifyFd: -1, Main: []string{"-app"}}, ""},
		{nil, initOptions{}, "usage: missing scandir"},
		{[]string{"sv", "app"}, initOptions{}, `usage: unexpected "app" after scandir: the command follows --`},
		{[]string{"sv", "--"}, initOptions{}, "usage: missing command after --"},
		{[]string{"-t", "-1", "sv"}, initOptions{}, `usage: -t: invalid number "-1"`},
		{[]string{"-d", "2", "sv"}, initOptions{}, "usage: -d: fd must be at least 3"},
		{[]string{"-x", "sv"}, initOptions{}, "usage: unknown option -x"},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *initOptions
		err := execCmd(newInitCmd(e, func(o *initOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("init %q: error %q, want %q", tt.argv, msg, tt.err)
		} else if tt.err == "" && !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("init %q: %+v, want %+v", tt.argv, *got, tt.want)
		}
	}
}
