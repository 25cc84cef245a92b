package cli

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/pyprof/pyprof/pyversions"
)

func TestAdviceFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    hostFacts
		want []string
		not  []string
	}{
		{"no yama, no cap", hostFacts{}, []string{"sudo pyprof", "setcap cap_sys_ptrace+ep", "SYS_PTRACE", "securityContext"}, []string{"ptrace_scope"}},
		{"scope 1", hostFacts{ptraceScope: "1"}, []string{"setcap", "ptrace_scope is 1", "sysctl"}, nil},
		{"scope 2", hostFacts{ptraceScope: "2"}, []string{"setcap", "ptrace_scope is 2"}, []string{"sysctl"}},
		{"scope 3", hostFacts{ptraceScope: "3"}, []string{"ptrace_scope is 3", "reboot"}, []string{"setcap"}},
		{"container", hostFacts{container: true}, []string{"looks like a container", "SYS_PTRACE"}, nil},
		{"has cap", hostFacts{hasCap: true}, []string{"already be traced", "seccomp"}, []string{"setcap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := adviceFor(42, syscall.EPERM, tc.h)
			if !strings.Contains(got, "process 42") {
				t.Errorf("advice does not name the pid:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("advice lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("advice should not mention %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestExplainDescriptorErrors(t *testing.T) {
	v := pyversions.Version{Major: 3, Minor: 16}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&pyversions.DebugOffsetsError{Version: v, Known: "3.13, 3.14"},
			"process 42: python 3.16.0: _Py_DebugOffsets layout not recognised (known formats: 3.13, 3.14)"},
		{fmt.Errorf("python 3.13.0: %w", pyversions.ErrFreeThreaded),
			"process 42: python 3.13.0: free-threaded builds are not supported"},
	} {
		if got := explain(&targetError{pid: 42, err: tc.err}); got != tc.want {
			t.Errorf("explain = %q, want %q", got, tc.want)
		}
	}
}
