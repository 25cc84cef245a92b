package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pyprof/pyprof/procmem"
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
	st, err := procmem.DefaultFS.Stat(pid)
	if err != nil {
		return stat{}, err
	}
	return stat{cpu: time.Duration(st.UTime+st.STime) * clockTick}, nil
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
	p, err := procmem.Open(pid)
	if err != nil {
		return u, err
	}
	defer p.Close()
	st, err := p.Status()
	if err != nil {
		return u, err
	}
	u.rss, u.hwm = st.VmRSS, st.VmHWM
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
	// A long line (a report of a thousand greenlets, a progress line
	// rewritten with \r) keeps its head, which says what it is, and
	// what follows its first 4 kB is dropped.
	if len(l.part) > 1<<16 {
		l.part = l.part[:4096]
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
	for i, l := range lines {
		if len(l) > 300 {
			lines[i] = l[:300] + "…"
		}
	}
	return strings.Join(lines, "\n")
}
