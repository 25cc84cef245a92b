package procmem

import (
	"context"
	"fmt"
	"math"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/process"
)

// What speed does not matter for is read with gopsutil, rooted at the
// FS's directory through the context value gopsutil documents
// (common.EnvKey with common.HostProcEnvKey), so that fixture trees and a
// bind-mounted host /proc serve it as they serve the rest of this package.
//
// A gopsutil process is built from its pid alone rather than with
// process.NewProcess, which checks that the pid exists by kill(pid, 0)
// when the root is not a mount point (a fixture tree, or a copy) and
// would then ask the host, not the FS; it also reads the stat file and
// calls getpriority before anything is asked of it.
func (fsys FS) gopsutil(pid int) (context.Context, *process.Process) {
	ctx := context.WithValue(context.Background(), common.EnvKey, common.EnvMap{common.HostProcEnvKey: fsys.root})
	return ctx, &process.Process{Pid: int32(pid)}
}

// Cmdline returns the arguments of process pid, with every trailing NUL
// dropped: setproctitle writes its title over the argument area and pads
// the rest with NULs, which would otherwise read as empty arguments. It is
// empty for kernel threads and zombies. The error wraps syscall.ESRCH
// when the process is gone.
func (fsys FS) Cmdline(pid int) ([]string, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return nil, fmt.Errorf("process %d: %w", pid, syscall.ESRCH)
	}
	ctx, p := fsys.gopsutil(pid)
	args, err := p.CmdlineSliceWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, goneErr(err))
	}
	// gopsutil returns one empty argument for a command line of NULs
	// only; that is no arguments, as for a kernel thread.
	if len(args) == 1 && args[0] == "" {
		return nil, nil
	}
	return args, nil
}

// Usage is what a process has used of the machine so far.
type Usage struct {
	CPU time.Duration // user and system time of all its threads
	RSS int64         // resident memory, in bytes
}

// Usage reads the CPU time and resident memory of process pid, for a
// table refreshed once a second.
func (fsys FS) Usage(pid int) (Usage, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return Usage{}, fmt.Errorf("process %d: %w", pid, syscall.ESRCH)
	}
	ctx, p := fsys.gopsutil(pid)
	times, err := p.TimesWithContext(ctx)
	if err != nil {
		return Usage{}, fmt.Errorf("process %d cpu time: %w", pid, goneErr(err))
	}
	mem, err := p.MemoryInfoWithContext(ctx)
	if err != nil {
		return Usage{}, fmt.Errorf("process %d memory: %w", pid, goneErr(err))
	}
	// gopsutil gives seconds as a float, from whole clock ticks.
	cpu := time.Duration(math.Round((times.User + times.System) * float64(time.Second)))
	return Usage{CPU: cpu, RSS: int64(mem.RSS)}, nil
}
