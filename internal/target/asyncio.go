package target

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pyprof/pyprof/pyspy/asynctask"
)

// ErrNoAsyncioDebug means no mapped image carries the _asyncio module's
// .AsyncioDebug section: before 3.14, or before asyncio is imported when
// _asyncio is a shared object of its own.
var ErrNoAsyncioDebug = errors.New("no .AsyncioDebug section mapped")

// AsyncioDebugOffsets reads the target's _Py_AsyncioModuleDebugOffsets
// (3.14+) from the .AsyncioDebug section of whichever mapped image has it:
// the _asyncio extension module, or the interpreter when _asyncio is built
// in. The values are static data, so they are read from the file.
func (p *Process) AsyncioDebugOffsets() (*asynctask.DebugOffsets, error) {
	if !p.Version.AtLeast(3, 14) {
		return nil, ErrNoAsyncioDebug
	}
	maps, err := p.Proc.Maps()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, m := range maps {
		base := filepath.Base(m.Path)
		if m.Path == "" || seen[m.Path] || !(strings.Contains(base, "python") || strings.HasPrefix(base, "_asyncio")) {
			continue
		}
		seen[m.Path] = true
		e, err := p.Proc.OpenELF(m.Path)
		if err != nil {
			continue
		}
		addr, size, ok := e.Section(".AsyncioDebug")
		if !ok || size < asynctask.DebugOffsetsSize {
			e.Close()
			continue
		}
		b := make([]byte, asynctask.DebugOffsetsSize)
		err = e.ReadVirtual(b, addr)
		e.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: .AsyncioDebug: %w", m.Path, err)
		}
		d, err := asynctask.DecodeDebugOffsets(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
		return d, nil
	}
	return nil, ErrNoAsyncioDebug
}

// Tasks reads the process's unfinished asyncio tasks (see package
// asynctask), given the threads of a sample taken just before: it is
// meant for a paused process. Each call reads afresh.
func (p *Process) Tasks(threads []asynctask.Thread, o asynctask.ReadOptions) ([]asynctask.Task, error) {
	r, derr := p.TaskReader()
	if r == nil {
		return nil, derr
	}
	tasks, err := r.Tasks(threads, o)
	if err != nil && derr != nil {
		err = errors.Join(err, derr)
	}
	return tasks, err
}

// TaskReader returns a reader of the process's asyncio tasks, to be kept
// for repeated reads. From 3.14 it reads through the target's own
// _Py_AsyncioModuleDebugOffsets if they can be read, else through the
// offsets of the released builds, and the error then says why it could
// not read them (nil while asyncio is not imported yet).
func (p *Process) TaskReader() (*asynctask.Reader, error) {
	cfg := asynctask.Config{Facts: p.Config.Facts, Interp: p.Reader.Interpreter()}
	if cfg.Facts == nil {
		return nil, errors.New("no facts")
	}
	var derr error
	if p.Version.AtLeast(3, 14) {
		if cfg.Debug, derr = p.AsyncioDebugOffsets(); errors.Is(derr, ErrNoAsyncioDebug) {
			derr = nil
		}
	}
	r, err := asynctask.New(p.Proc, cfg)
	if err != nil {
		return nil, err
	}
	return r, derr
}
