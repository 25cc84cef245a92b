package procmem

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// OpenFile opens a file as the target sees it. path is in the target's mount
// namespace, as found in Exe or Maps, with or without a " (deleted)" suffix.
//
// The file is opened through /proc/PID/root, which crosses into a container's
// filesystem. A file that was deleted or replaced after the target mapped it
// is never opened by path, since whatever is there now (say, after a package
// upgrade) is not what is in memory. Such a file, or one whose root is not
// reachable, is opened through /proc/PID/exe if it is the executable, and
// otherwise through /proc/PID/map_files, which needs CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE.
func (p *Process) OpenFile(path string) (*os.File, error) {
	path, deleted := strings.CutSuffix(path, deletedSuffix)
	// Without maps there are still the other ways to try.
	maps, _ := p.Maps()
	var m *Mapping
	for i := range maps {
		if maps[i].Path == path {
			m = &maps[i]
			if m.Deleted {
				deleted = true
				break
			}
		}
	}

	var errs []error
	open := func(name string) *os.File {
		f, err := os.Open(name)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return f
	}
	if !deleted {
		if f := open(p.path("root", path)); f != nil {
			return f, nil
		}
	}
	if exe, err := os.Readlink(p.path("exe")); err == nil && strings.TrimSuffix(exe, deletedSuffix) == path {
		if f := open(p.path("exe")); f != nil {
			return f, nil
		}
	}
	if m != nil {
		if f := open(p.path("map_files", fmt.Sprintf("%x-%x", m.Start, m.End))); f != nil {
			return f, nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("deleted and not mapped: %w", fs.ErrNotExist))
	}
	return nil, fmt.Errorf("open %s of process %d: %w", path, p.pid, p.fileErr(errors.Join(errs...), ""))
}

// OpenELF opens an ELF file of the target with OpenFile. Closing the ELF
// closes the file.
func (p *Process) OpenELF(path string) (*ELF, error) {
	f, err := p.OpenFile(path)
	if err != nil {
		return nil, err
	}
	e, err := OpenELF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.closer = f
	return e, nil
}
