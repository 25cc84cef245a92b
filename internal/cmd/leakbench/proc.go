package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture pyprof runs on.
const clockTick = 10 * time.Millisecond

type stat struct {
	cpu time.Duration // utime + stime, every thread of the process
}

// readStat reads the CPU time of process pid from /proc/PID/stat. A zombie
// not yet reaped still has it.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name may hold spaces and parentheses; nothing after the
	// last ')' does.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("malformed stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return stat{}, fmt.Errorf("short stat of %d", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return stat{}, fmt.Errorf("malformed stat of %d", pid)
	}
	return stat{cpu: time.Duration(ut+st) * clockTick}, nil
}

// usage is what a process holds at one moment.
type usage struct {
	fds      int
	rss, hwm int64 // kB
}

// readUsage counts the open fds of pid and reads its resident set size now
// (VmRSS) and at its peak (VmHWM).
func readUsage(pid int) (usage, error) {
	var u usage
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, err
	}
	u.fds = len(ents)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb := func() int64 {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
			return n
		}
		switch key {
		case "VmRSS":
			u.rss = kb()
		case "VmHWM":
			u.hwm = kb()
		}
	}
	return u, nil
}

// lineLog collects what a child writes, line by line, and lets a callback
// see each line as it comes.
type lineLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	onLine func(string)
	part   []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		if l.onLine != nil {
			l.onLine(string(l.part[:i]))
		}
		l.part = l.part[i+1:]
	}
	// The tail of a line a program rewrites with \r is kept short.
	if len(l.part) > 1<<16 {
		l.part = l.part[len(l.part)-1<<16:]
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var _ io.Writer = (*lineLog)(nil)

// tail returns the last lines of a log, for error messages.
func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "\n")
}
