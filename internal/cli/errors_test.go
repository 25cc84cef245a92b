package cli

import (
	"strings"
	"syscall"
	"testing"
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
