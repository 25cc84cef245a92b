package cli

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/pyprof/pyprof/pyversions"
)

// k8sAdvice is what every piece of container advice must name.
var k8sAdvice = []string{"docker run --cap-add SYS_PTRACE", `capabilities: {add: ["SYS_PTRACE"]}`, "kubectl debug", "--target=CONTAINER", "--profile=general"}

func TestAdviceFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    hostFacts
		want []string
		not  []string
	}{
		{"no yama, no cap", hostFacts{boundCap: true}, []string{"sudo pyprof", "setcap cap_sys_ptrace+ep", "SYS_PTRACE", "securityContext"}, []string{"ptrace_scope", "docker run"}},
		{"scope 1", hostFacts{ptraceScope: "1", boundCap: true}, []string{"setcap", "ptrace_scope is 1", "sysctl"}, nil},
		{"scope 2", hostFacts{ptraceScope: "2", boundCap: true}, []string{"setcap", "ptrace_scope is 2"}, []string{"sysctl"}},
		{"scope 3", hostFacts{ptraceScope: "3", boundCap: true}, []string{"ptrace_scope is 3", "reboot"}, []string{"setcap"}},
		{"has cap", hostFacts{hasCap: true, boundCap: true}, []string{"seccomp", "process_vm_readv", "/proc/PID/mem"}, []string{"setcap", "docker run", "container", "already be traced"}},
		{"has cap in a container", hostFacts{hasCap: true, boundCap: true, container: true}, []string{"process_vm_readv", "runtime's seccomp profile", "seccompProfile"}, []string{"setcap"}},
		{"container, user", hostFacts{container: true, boundCap: true},
			append([]string{"This container allows it", "sudo pyprof", "setcap cap_sys_ptrace+ep"}, k8sAdvice...), []string{"already runs as root", "neither sudo nor setcap"}},
		{"container, root without the capability", hostFacts{container: true, root: true},
			append([]string{"looks like a container", "already runs as root", "neither sudo nor setcap"}, k8sAdvice...), []string{"sudo pyprof", "setcap cap_sys_ptrace+ep"}},
		{"container, user without the capability", hostFacts{container: true},
			append([]string{"looks like a container", "neither sudo nor setcap"}, k8sAdvice...), []string{"sudo pyprof", "already runs as root"}},
		{"root, capability dropped outside a container", hostFacts{root: true},
			append([]string{"not even in pyprof's capability bounding set", "If this is a container", "setpriv"}, k8sAdvice...), []string{"sudo pyprof", "looks like a container"}},
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

func TestNoProcessMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    hostFacts
		want []string
		not  []string
	}{
		{"host", hostFacts{boundCap: true}, []string{"no process with pid 42"}, []string{"\n"}},
		{"container", hostFacts{container: true, boundCap: true}, []string{"no process with pid 42", "pid namespace", "--target=CONTAINER", "--pid=container:NAME", "on the host"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := noProcessMessage(42, tc.h)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("message lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("message should not contain %q:\n%s", w, got)
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

// TestExplainPermission: only a permission error about reading or attaching
// to the target gets the ptrace advice; one from writing the output or
// starting a program is shown as it is.
func TestExplainPermission(t *testing.T) {
	outputErr := fmt.Errorf("cannot write the output: %w", &os.PathError{Op: "open", Path: "/root/.pyprof-1.tmp", Err: syscall.EACCES})
	for _, tc := range []struct {
		name   string
		err    error
		advice bool
	}{
		{"attach refused", &targetError{pid: 42, err: fmt.Errorf("attach: %w", syscall.EPERM)}, true},
		{"memory read refused", &targetError{pid: 42, err: fmt.Errorf("read frame at 0x10: %w", syscall.EACCES)}, true},
		{"pause refused", &targetError{pid: 42, err: fmt.Errorf("pause process: %w", &os.SyscallError{Syscall: "ptrace", Err: syscall.EPERM})}, true},
		{"target error wrapped again", fmt.Errorf("process 42: %w", &targetError{pid: 42, err: syscall.EPERM}), true},
		{"output not writable", outputErr, false},
		{"output rename refused", fmt.Errorf("write /etc/x.svg: %w", &os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EPERM}), false},
		{"program not executable", &launchError{"./app.py", &os.PathError{Op: "fork/exec", Path: "./app.py", Err: syscall.EACCES}}, false},
		{"bare EPERM", syscall.EPERM, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explain(tc.err)
			if has := strings.Contains(got, "CAP_SYS_PTRACE") || strings.Contains(got, "ptrace_scope") || strings.Contains(got, "permission denied reading process"); has != tc.advice {
				t.Errorf("advice %v, want %v:\n%s", has, tc.advice, got)
			}
			if !tc.advice && got != tc.err.Error() {
				t.Errorf("explain = %q, want the error as it is, %q", got, tc.err.Error())
			}
			if tc.advice && !strings.Contains(got, "process 42") {
				t.Errorf("advice does not name the pid:\n%s", got)
			}
		})
	}
}
