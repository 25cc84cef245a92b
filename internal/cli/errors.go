package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/pyprof/pyprof/internal/outfile"
	"github.com/pyprof/pyprof/internal/target"
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
	var ze *target.ZombieError
	var ke *target.KernelThreadError
	var npe *notPythonError
	var oe *outfile.Error
	switch {
	case errors.As(err, &le):
		return le.Error()
	case errors.As(err, &oe):
		// About a file, not the target: no ptrace advice.
		return err.Error()
	// Before ESRCH and the ptrace advice: neither is about a pid that
	// is missing or a permission.
	case errors.As(err, &ze):
		return ze.Error()
	case errors.As(err, &ke):
		return ke.Error()
	case errors.As(err, &npe):
		return npe.Error()
	case errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrNotExist) && pid != 0 && !processExists(pid):
		return noProcessMessage(pid, currentHostFacts())
	case errors.As(err, &ue):
		return fmt.Sprintf("process %d runs Python %s, which pyprof does not support (supported: %s)", pid, ue.Version, ue.Supported)
	case errors.As(err, &de):
		return fmt.Sprintf("process %d: %v", pid, de)
	case errors.Is(err, pyversions.ErrFreeThreaded):
		return fmt.Sprintf("process %d: %v", pid, err)
	case te != nil && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)):
		// Only a refusal to read or attach to the target is about
		// ptrace; one from writing the output or starting a program
		// is shown as it is.
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

// hostFacts are what the advice depends on.
type hostFacts struct {
	ptraceScope string // kernel.yama.ptrace_scope, "" without Yama
	hasCap      bool   // CAP_SYS_PTRACE in our effective set
	// boundCap is CAP_SYS_PTRACE in our bounding set: without it neither
	// root nor a file capability can gain it, as in a container started
	// without it.
	boundCap  bool
	root      bool // effective uid 0
	container bool // we seem to run in a container
}

func currentHostFacts() hostFacts {
	eff, bnd := selfCaps()
	return hostFacts{
		ptraceScope: readTrim("/proc/sys/kernel/yama/ptrace_scope"),
		hasCap:      eff&(1<<capSysPtrace) != 0,
		boundCap:    bnd&(1<<capSysPtrace) != 0,
		root:        os.Geteuid() == 0,
		container:   runningInContainer(),
	}
}

// noProcessMessage explains a pid that does not exist. In a container,
// pyprof sees only the processes of its own pid namespace, so a pid taken
// from the host or from another container is not there.
func noProcessMessage(pid int, h hostFacts) string {
	msg := fmt.Sprintf("no process with pid %d", pid)
	if h.container {
		msg += "\npyprof runs in a container and sees only the processes of its pid namespace. To profile another container's process, share that container's pid namespace (kubectl debug -it POD --image=IMAGE --target=CONTAINER --profile=general; docker run --pid=container:NAME --cap-add SYS_PTRACE ...) and use the pid it has there, or run pyprof on the host with the host's pid."
	}
	return msg
}

// containerRemedies are the ways to start a container with CAP_SYS_PTRACE.
const containerRemedies = `  - Docker: docker run --cap-add SYS_PTRACE ... (with --pid=container:NAME to see another container's processes)
  - Kubernetes: in the container's securityContext, capabilities: {add: ["SYS_PTRACE"]}
  - a debug container beside the target: kubectl debug -it POD --image=IMAGE --target=CONTAINER --profile=general`

// permissionAdvice explains a refused ptrace or process_vm_readv: it checks
// Yama's ptrace_scope and this process's capabilities to say which remedy
// applies.
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
		// Being traced by another program, or ptrace being denied alone,
		// makes pyprof read without pausing rather than fail: what is
		// left is reading memory itself.
		b.WriteString("pyprof has CAP_SYS_PTRACE, yet was refused: a seccomp filter or a security module (SELinux, AppArmor) denies it access to the process. pyprof reads memory with process_vm_readv, or through /proc/PID/mem where that system call is denied, and the policy must allow one of them (it can do without ptrace).")
		if h.container {
			b.WriteString(" In a container, that can be the runtime's seccomp profile (Kubernetes: securityContext.seccompProfile; Docker: --security-opt seccomp=PROFILE).")
		}
		return b.String()
	}
	b.WriteString("pyprof needs the CAP_SYS_PTRACE capability to read another process's memory.")
	switch {
	case !h.boundCap:
		// Neither sudo nor setcap can help: the capability has to be
		// granted where the container, or pyprof, is started.
		if h.container {
			b.WriteString(" This looks like a container started without it; add SYS_PTRACE to the container pyprof runs in:\n")
		} else {
			b.WriteString(" It is not even in pyprof's capability bounding set. If this is a container, add SYS_PTRACE to it:\n")
		}
		b.WriteString(containerRemedies)
		if h.root {
			b.WriteString("\npyprof already runs as root, but without CAP_SYS_PTRACE in the bounding set neither sudo nor setcap can grant it here; it was dropped by whatever started pyprof (the container runtime, setpriv, capsh, a systemd unit's CapabilityBoundingSet).")
		} else {
			b.WriteString("\nWithout CAP_SYS_PTRACE in the bounding set, neither sudo nor setcap can grant it here.")
		}
	case h.container:
		// The bounding set of a container is the capabilities it was
		// started with, so this one has it; pyprof's user does not.
		b.WriteString(" This container allows it, but pyprof does not run with it. Either:\n")
		b.WriteString("  - run it as root in the container: sudo pyprof ...\n")
		b.WriteString("  - grant the capability to the binary: sudo setcap cap_sys_ptrace+ep $(which pyprof)\n")
		b.WriteString("To give it to a container when it starts:\n")
		b.WriteString(containerRemedies)
	default:
		b.WriteString(" Either:\n")
		b.WriteString("  - run it as root: sudo pyprof ...\n")
		b.WriteString("  - grant the capability to the binary: sudo setcap cap_sys_ptrace+ep $(which pyprof)\n")
		b.WriteString("  - in Kubernetes, add SYS_PTRACE to the pod's securityContext.capabilities.add")
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

// selfCaps returns this process's effective and bounding capability sets.
// An unreadable bounding set counts as full: the advice then suggests sudo
// and setcap, as for a user without the capability.
func selfCaps() (eff, bnd uint64) {
	bnd = ^uint64(0)
	for _, line := range strings.Split(readTrim("/proc/self/status"), "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			continue
		}
		switch key {
		case "CapEff":
			eff = caps
		case "CapBnd":
			bnd = caps
		}
	}
	return eff, bnd
}

// runningInContainer looks for the marks container runtimes leave: Docker's
// /.dockerenv, Podman's /run/.containerenv, the variables Kubernetes sets
// in every pod, and cgroup v1 paths naming the runtime.
func runningInContainer() bool {
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return true
	}
	cg := readTrim("/proc/1/cgroup")
	return strings.Contains(cg, "kubepods") || strings.Contains(cg, "docker") || strings.Contains(cg, "containerd") || strings.Contains(cg, "libpod")
}
