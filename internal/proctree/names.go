package proctree

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Names returns what people call the process, deduplicated: its comm, the
// base name of its executable, the base name of argv[0] (for a title set
// with setproctitle, such as "gunicorn: master [app:app]", its first word
// up to the ':'), and for a Python interpreter the script or -m module it
// runs. A gunicorn started from its console script thus answers to
// "gunicorn" through its comm and its script even though its executable is
// python3.11.
func (p Proc) Names() []string {
	names := make([]string, 0, 4)
	add := func(s string) {
		if s != "" && !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	add(p.Comm)
	exe := exeName(p.Exe)
	add(exe)
	if len(p.Cmdline) == 0 {
		return names
	}
	arg0 := p.Cmdline[0]
	// setproctitle overwrites the whole argument area with one string;
	// what follows its first word is prose, not arguments.
	title := false
	if len(p.Cmdline) == 1 {
		if words := strings.Fields(arg0); len(words) > 1 {
			title = true
			arg0, _, _ = strings.Cut(words[0], ":")
		}
	}
	arg0 = baseName(arg0)
	add(arg0)
	// The executable counts as well as argv[0] because `exec -a NAME
	// python3 app.py` renames argv[0] but leaves the arguments Python's.
	if !title && (isInterpreter(arg0) || isInterpreter(exe)) {
		add(scriptName(p.Cmdline[1:]))
	}
	return names
}

// exeName is the base name of an exe link, without the " (deleted)" the
// kernel appends once the file has been replaced, as a package upgrade
// does under a running server.
func exeName(exe string) string {
	return baseName(strings.TrimSuffix(exe, " (deleted)"))
}

func baseName(path string) string {
	if strings.TrimSpace(path) == "" {
		return ""
	}
	b := filepath.Base(path)
	if b == "." || b == "/" {
		return ""
	}
	return b
}

// interpreterName matches python, python3, python3.11, python3.6m,
// python3.13t, python3.11-dbg, pypy, pypy3.10, pypy3.10-c and the like.
var interpreterName = regexp.MustCompile(`^(?:python|pypy)(?:[0-9]+(?:\.[0-9]+)?)?[dmtu]*(?:-dbg|-c)?$`)

func isInterpreter(name string) bool { return interpreterName.MatchString(name) }

// scriptName finds what an interpreter runs from the arguments after the
// interpreter itself: the base name of the script, the module of -m, or ""
// for -c, for a program read from stdin, and for a bare REPL. The option
// syntax is CPython's (and PyPy's): short flags may be combined ("-uO"),
// and -c, -m, -W, -X and -Q take an argument that is either attached
// ("-Wignore", "-mgunicorn") or the next word.
func scriptName(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return baseName(args[i+1])
			}
			return ""
		case a == "-":
			return ""
		case a == "--check-hash-based-pycs":
			i++
		case strings.HasPrefix(a, "--"):
			// --help, --version and the like take no argument.
		case strings.HasPrefix(a, "-"):
		flags:
			for j := 1; j < len(a); j++ {
				switch a[j] {
				case 'c':
					return ""
				case 'm':
					if mod := a[j+1:]; mod != "" {
						return mod
					}
					if i+1 < len(args) {
						return args[i+1]
					}
					return ""
				case 'W', 'X', 'Q':
					if j+1 == len(a) {
						i++
					}
					break flags
				}
			}
		default:
			return baseName(a)
		}
	}
	return ""
}

// Name is the one name of Names that says most about the process, for a
// label: its comm, unless that is an interpreter's (python3), which then
// gives way to the script or module it runs; "" for a process with
// neither.
func (p Proc) Name() string {
	if p.Comm != "" && !isInterpreter(p.Comm) {
		return p.Comm
	}
	if len(p.Cmdline) > 1 && (isInterpreter(baseName(p.Cmdline[0])) || isInterpreter(exeName(p.Exe))) {
		if s := scriptName(p.Cmdline[1:]); s != "" {
			return s
		}
	}
	return p.Comm
}
