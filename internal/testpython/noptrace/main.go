// Command noptrace runs a program with ptrace denied, as in a locked-down
// pod: a seccomp filter makes every ptrace call fail with EPERM and
// allows everything else, process_vm_readv included unless -readv is
// given. pyprof's tests run it under this to check what each command does
// when it cannot pause its target.
//
// Usage: noptrace [-readv] PROGRAM [ARGS...]
//
// The filter is inherited across exec and by children, and cannot be
// lifted; it needs no privilege (no_new_privs is set first). It is
// written for x86_64.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	readv := flag.Bool("readv", false, "deny process_vm_readv too")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: noptrace [-readv] PROGRAM [ARGS...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	path, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		fatal(err)
	}
	deny := []uint32{unix.SYS_PTRACE}
	if *readv {
		deny = append(deny, unix.SYS_PROCESS_VM_READV)
	}
	// The filter and no_new_privs are the calling thread's, and exec
	// keeps only the thread that calls it.
	runtime.LockOSThread()
	if err := install(filter(deny)); err != nil {
		fatal(err)
	}
	fatal(syscall.Exec(path, flag.Args(), os.Environ()))
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "noptrace: %v\n", err)
	os.Exit(127)
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

// x32Bit marks the system calls of the x32 ABI, which share x86_64's
// audit arch.
const x32Bit = 0x40000000

// filter returns a classic BPF program that fails the system calls deny
// with EPERM and allows the others. A system call of another ABI (i386's
// int 0x80, x32) has other numbers, which would let its ptrace through, so
// it kills the process instead: nothing under test makes one.
func filter(deny []uint32) []unix.SockFilter {
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	n := len(deny)
	// Instructions 0-3 check the ABI and load the number, 4 to 4+n-1
	// match the denied calls; then allow, errno and kill.
	errno, kill := 5+n, 6+n
	// A jump's offset counts from the next instruction.
	to := func(from, target int) uint8 { return uint8(target - from - 1) }
	prog := []unix.SockFilter{
		{Code: ld, K: offArch},
		{Code: jeq, K: unix.AUDIT_ARCH_X86_64, Jt: 0, Jf: to(1, kill)},
		{Code: ld, K: offNr},
		{Code: jge, K: x32Bit, Jt: to(3, kill), Jf: 0},
	}
	for i, nr := range deny {
		prog = append(prog, unix.SockFilter{Code: jeq, K: nr, Jt: to(4+i, errno), Jf: 0})
	}
	return append(prog,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS},
	)
}

func install(prog []unix.SockFilter) error {
	if runtime.GOARCH != "amd64" {
		return errors.New("the filter is written for amd64, not " + runtime.GOARCH)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("install seccomp filter: %w", err)
	}
	return nil
}
