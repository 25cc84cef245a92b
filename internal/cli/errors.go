package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/pyprof/pyprof/pyversions"
)

// targetError carries the pid an error is about, so explain can name it.
type targetError struct {
	pid int
	err error
}

func (e *targetError) Error() string { return e.err.Error() }
func (e *targetError) Unwrap() error { return e.err }

// explain turns the errors users can fix into messages that say how.
// Everything else is shown as the wrapped chain.
func explain(err error) string {
	pid := 0
	var te *targetError
	if errors.As(err, &te) {
		pid = te.pid
	}
	var ue *pyversions.UnsupportedError
	var de *pyversions.DebugOffsetsError
	var le *launchError
	switch {
	case errors.As(err, &le):
		return le.Error()
	case errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrNotExist) && pid != 0 && !processExists(pid):
		return fmt.Sprintf("no process with pid %d", pid)
	case errors.As(err, &ue):
		return fmt.Sprintf("process %d runs Python %s, which pyprof does not support (supported: %s)", pid, ue.Version, ue.Supported)
	case errors.As(err, &de):
		return fmt.Sprintf("process %d: %v", pid, de)
	case errors.Is(err, pyversions.ErrFreeThreaded):
		return fmt.Sprintf("process %d: %v", pid, err)
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return permissionAdvice(pid, err)
	}
	return err.Error()
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// capSysPtrace is CAP_SYS_PTRACE's bit in /proc/PID/status CapEff.
const capSysPtrace = 19

// hostFacts are what the permission advice depends on.
type hostFacts struct {
	ptraceScope string // kernel.yama.ptrace_scope, "" without Yama
	hasCap      bool   // CAP_SYS_PTRACE in our effective set
	container   bool   // we seem to run in a container
}

func currentHostFacts() hostFacts {
	return hostFacts{
		ptraceScope: readTrim("/proc/sys/kernel/yama/ptrace_scope"),
		hasCap:      selfHasCap(capSysPtrace),
		container:   runningInContainer(),
	}
}

// permissionAdvice explains a refused ptrace or process_vm_readv: it checks
// Yama's ptrace_scope and this process's effective capabilities to say
// which remedy applies.
func permissionAdvice(pid int, err error) string {
	return adviceFor(pid, err, currentHostFacts())
}

func adviceFor(pid int, err error, h hostFacts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "permission denied reading process %d (%v).\n", pid, err)
	switch {
	case h.ptraceScope == "3":
		b.WriteString("kernel.yama.ptrace_scope is 3: no process may be traced until reboot, not even by root.")
		return b.String()
	case h.hasCap:
		b.WriteString("pyprof has CAP_SYS_PTRACE, yet was refused: the target may already be traced (TracerPid in /proc/PID/status), or a seccomp or LSM policy (SELinux, AppArmor) blocks ptrace.")
		return b.String()
	}
	b.WriteString("pyprof needs the CAP_SYS_PTRACE capability to read another process's memory. Either:\n")
	b.WriteString("  - run it as root: sudo pyprof ...\n")
	b.WriteString("  - grant the capability to the binary: sudo setcap cap_sys_ptrace+ep $(which pyprof)\n")
	b.WriteString("  - in Kubernetes, add SYS_PTRACE to the pod's securityContext.capabilities.add")
	if h.container {
		b.WriteString(" (this looks like a container, and it lacks the capability)")
	}
	switch h.ptraceScope {
	case "1":
		b.WriteString("\nkernel.yama.ptrace_scope is 1: without the capability only a parent may trace its children (sudo sysctl kernel.yama.ptrace_scope=0 lifts that).")
	case "2":
		b.WriteString("\nkernel.yama.ptrace_scope is 2: only processes with CAP_SYS_PTRACE may trace, so setcap or root are the remedies.")
	}
	return b.String()
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// selfHasCap reports whether this process has capability bit in its
// effective set.
func selfHasCap(bit uint) bool {
	for _, line := range strings.Split(readTrim("/proc/self/status"), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<bit) != 0
		}
	}
	return false
}

func runningInContainer() bool {
	if _, err := os.Stat("/.dockerenv"); err == nil {
		return true
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return true
	}
	cg := readTrim("/proc/1/cgroup")
	return strings.Contains(cg, "kubepods") || strings.Contains(cg, "docker") || strings.Contains(cg, "containerd")
}
