package layoutgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/pyprof/pyprof/pyversions"
)

// Distribution builds (Debian's among them) are stripped and their debug
// symbols are not always to be had, but their -dev packages ship the
// headers, Include/internal included, and pyconfig.h for the exact build
// configuration. Compiling those headers reproduces the build's struct
// layouts, so a layout can be taken from them instead of from DWARF:
//
//   - a C file that includes every header a spec names is compiled with
//     debug info into an object file, whose DWARF the specs then resolve
//     exactly as they resolve a libpython's;
//   - a second C program then prints offsetof/sizeof of every member the
//     first step resolved, and both must agree, so the table does not rest
//     on one tool's reading of the headers.

// HeaderBuild is an installed set of CPython headers.
type HeaderBuild struct {
	// Include lists the -I directories: the one holding Python.h, and
	// where pyconfig.h includes a multiarch pyconfig.h, its root.
	Include []string
	// Defines are the -D and -U options the build compiled the core
	// with, from the Makefile the -dev package ships: some change struct
	// layouts (Debian's 3.15 defines _Py_TIER2 and _Py_JIT, which add
	// members to the interpreter state), and pyconfig.h does not hold them.
	Defines []string
	Version pyversions.Version
	// Origin names where the headers come from, for the generated table.
	Origin string
}

// headersSource includes what the specs name. Internal headers are looked
// up by name because minors move structs between them (3.14 splits
// _PyInterpreterFrame into pycore_interpframe_structs.h).
var headersSource = func() string {
	var b strings.Builder
	b.WriteString("#define Py_BUILD_CORE 1\n#include \"Python.h\"\n")
	for _, h := range []string{
		"pycore_runtime.h", "pycore_interp.h", "pycore_frame.h", "pycore_interpframe.h",
		"pycore_code.h", "pycore_dict.h", "pycore_moduleobject.h", "pycore_gil.h",
		"pycore_debug_offsets.h", "pycore_long.h", "pycore_stackref.h",
	} {
		fmt.Fprintf(&b, "#if __has_include(\"internal/%[1]s\")\n#include \"internal/%[1]s\"\n#endif\n", h)
	}
	return b.String()
}()

// compilerTimeout bounds one compiler run; the headers compile in well
// under a second.
const compilerTimeout = 2 * time.Minute

func cc() string {
	if c := os.Getenv("CC"); c != "" {
		return c
	}
	return "gcc"
}

// compile builds src in dir with h's headers and returns the output path;
// link asks for an executable rather than an object file.
func (h HeaderBuild) compile(dir, name, src string, link bool) (string, error) {
	in := filepath.Join(dir, name+".c")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	// -fno-eliminate-unused-debug-types keeps the DWARF of every struct
	// the headers define, not only of those the file uses.
	args := []string{"-g", "-O0", "-fno-eliminate-unused-debug-types", "-o", out}
	if !link {
		args = append(args, "-c")
	}
	args = append(args, h.Defines...)
	for _, inc := range h.Include {
		args = append(args, "-I", inc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), compilerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cc(), append(args, in)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("compile %s against %s: %w\n%s", name, strings.Join(h.Include, ", "), err, firstLines(stderr.String(), 20))
	}
	return out, nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// ExtractHeaders builds the layout, and from 3.13 the _Py_DebugOffsets
// format, of the build whose headers h names.
func ExtractHeaders(h HeaderBuild) (*pyversions.Layout, *pyversions.DebugOffsetsFormat, error) {
	dir, err := os.MkdirTemp("", "pyprof-layoutgen-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	obj, err := h.compile(dir, "headers.o", headersSource, false)
	if err != nil {
		return nil, nil, err
	}
	t, err := Open(obj)
	if err != nil {
		return nil, nil, err
	}
	l, used, err := extract(t, h.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("headers of %s: %w", h.Version, err)
	}
	f, _, err := debugFormat(t, h.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("headers of %s: %w", h.Version, err)
	}
	if err := h.crossCheck(dir, t, l, used, f); err != nil {
		return nil, nil, err
	}
	l.Origin = "headers of " + h.Origin
	if f != nil {
		f.Origin = l.Origin
	}
	return l, f, nil
}

// crossCheck compiles and runs a program that prints, with offsetof and
// sizeof, every value the DWARF of the headers gave, and compares.
func (h HeaderBuild) crossCheck(dir string, t *Types, l *pyversions.Layout, used []resolved, f *pyversions.DebugOffsetsFormat) error {
	var b strings.Builder
	b.WriteString(headersSource)
	b.WriteString("#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n\n")
	// lowbit finds a bitfield's position by setting it in a zeroed copy
	// of the word that holds it.
	b.WriteString("static int lowbit(const unsigned char *p, size_t n) {\n" +
		"\tfor (size_t i = 0; i < n; i++) for (int j = 0; j < 8; j++) if (p[i] >> j & 1) return (int)(i * 8 + j);\n" +
		"\treturn -1;\n}\n\nint main(void) {\n")
	want := map[string]int64{}
	for _, u := range used {
		typ, members, _ := strings.Cut(u.path, ".")
		ctype, err := t.CName(typ)
		if err != nil {
			return err
		}
		switch u.what {
		case sizeOf:
			fmt.Fprintf(&b, "\tprintf(\"%s %%zu\\n\", sizeof(%s));\n", u.field, ctype)
		case offsetOf:
			fmt.Fprintf(&b, "\tprintf(\"%s %%zu\\n\", offsetof(%s, %s));\n", u.field, ctype, members)
		case bitOf:
			word := members[:strings.LastIndex(members, ".")]
			fmt.Fprintf(&b, "\t{ static %s o; memset(&o, 0, sizeof o); o.%s = 1; printf(\"%s %%d\\n\", lowbit((const unsigned char *)&o.%s, sizeof o.%s)); }\n",
				ctype, members, u.field, word, word)
		}
		want[u.field] = fieldValue(l, u.field)
	}
	if f != nil {
		fmt.Fprintf(&b, "\tprintf(\"debug_offsets %%zu\\n\", sizeof(%s));\n", debugOffsetsType)
		want["debug_offsets"] = f.Size
		for _, fl := range f.Fields {
			fmt.Fprintf(&b, "\tprintf(\"debug_offsets.%s %%zu\\n\", offsetof(%s, %s));\n", fl.Path, debugOffsetsType, fl.Path)
			want["debug_offsets."+fl.Path] = fl.Offset
		}
	}
	b.WriteString("\treturn 0;\n}\n")
	exe, err := h.compile(dir, "offsets", b.String(), true)
	if err != nil {
		return err
	}
	out, err := exec.Command(exe).Output()
	if err != nil {
		return fmt.Errorf("run offsetof program for %s: %w", h.Version, err)
	}
	got := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var name string
		var v int64
		if _, err := fmt.Sscanf(line, "%s %d", &name, &v); err != nil {
			return fmt.Errorf("offsetof program for %s printed %q", h.Version, line)
		}
		got[name] = v
	}
	var bad []string
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			bad = append(bad, fmt.Sprintf("%s: DWARF %d, offsetof %d", name, w, g))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("headers of %s: the compiler's two readings disagree:\n%s", h.Version, strings.Join(bad, "\n"))
	}
	return nil
}

var pyVersionDefine = regexp.MustCompile(`(?m)^#define\s+PY_VERSION\s+"([^"]+)"`)

// NewHeaderBuild describes the headers installed as include/pythonX.Y
// under prefix, the layout of CPython's own install and of Debian's -dev
// packages alike. The version comes from patchlevel.h.
func NewHeaderBuild(prefix, minor, origin string) (HeaderBuild, error) {
	dir := filepath.Join(prefix, "include", "python"+minor)
	src, err := os.ReadFile(filepath.Join(dir, "patchlevel.h"))
	if err != nil {
		return HeaderBuild{}, err
	}
	m := pyVersionDefine.FindSubmatch(src)
	if m == nil {
		return HeaderBuild{}, fmt.Errorf("%s/patchlevel.h has no PY_VERSION", dir)
	}
	v, err := pyversions.Parse(string(m[1]))
	if err != nil {
		return HeaderBuild{}, fmt.Errorf("%s/patchlevel.h: %w", dir, err)
	}
	if v.MinorString() != minor {
		return HeaderBuild{}, fmt.Errorf("%s holds the headers of %s", dir, v)
	}
	if _, err := os.Stat(filepath.Join(dir, "internal")); err != nil {
		return HeaderBuild{}, fmt.Errorf("%s lacks the internal headers: %w", dir, err)
	}
	defines, err := buildDefines(prefix, minor)
	if err != nil {
		return HeaderBuild{}, err
	}
	// Debian's pyconfig.h includes <x86_64-linux-gnu/pythonX.Y/pyconfig.h>,
	// found from the include root.
	return HeaderBuild{Include: []string{dir, filepath.Join(prefix, "include")}, Defines: defines, Version: v, Origin: origin}, nil
}

// makeVar matches the Makefile variables that carry the core's compiler
// options.
var makeVar = regexp.MustCompile(`(?m)^(BASECFLAGS|CONFIGURE_CFLAGS|CONFIGURE_CFLAGS_NODIST|CONFIGURE_CPPFLAGS|CFLAGS_NODIST|BASECPPFLAGS)\s*=(.*)$`)

// buildDefines reads the preprocessor options of the build from the
// Makefile installed in lib/pythonX.Y/config-X.Y-*/.
func buildDefines(prefix, minor string) ([]string, error) {
	mks, err := filepath.Glob(filepath.Join(prefix, "lib", "python"+minor, "config-"+minor+"*", "Makefile"))
	if err != nil {
		return nil, err
	}
	if len(mks) != 1 {
		return nil, fmt.Errorf("want one Makefile of python%s's build under %s/lib, found %d", minor, prefix, len(mks))
	}
	src, err := os.ReadFile(mks[0])
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range makeVar.FindAllSubmatch(src, -1) {
		for _, opt := range strings.Fields(string(m[2])) {
			// _FORTIFY_SOURCE wants optimisation and changes no struct.
			if (strings.HasPrefix(opt, "-D") || strings.HasPrefix(opt, "-U")) && !strings.HasPrefix(opt, "-D_FORTIFY_SOURCE") {
				out = append(out, opt)
			}
		}
	}
	return out, nil
}

// SidCache is where .ci/sid-pythons installs Debian unstable's interpreters
// and -dev packages: $PYPROF_SID_CACHE, default /var/cache/pyprof.
func SidCache() string {
	if d := os.Getenv("PYPROF_SID_CACHE"); d != "" {
		return d
	}
	return "/var/cache/pyprof"
}

// FindHeaderBuilds lists the -dev headers that .ci/sid-pythons unpacked.
func FindHeaderBuilds() ([]HeaderBuild, error) {
	prefix := filepath.Join(SidCache(), "sid", "usr")
	dirs, err := filepath.Glob(filepath.Join(prefix, "include", "python3.*"))
	if err != nil {
		return nil, err
	}
	var out []HeaderBuild
	for _, d := range dirs {
		minor := strings.TrimPrefix(filepath.Base(d), "python")
		if _, err := os.Stat(filepath.Join(d, "Python.h")); err != nil {
			continue
		}
		h, err := NewHeaderBuild(prefix, minor, "Debian unstable's python"+minor+"-dev")
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version.Less(out[j].Version) })
	return out, nil
}

// PyenvHeaderBuilds lists the headers the pyenv builds installed beside
// their libpython, from minor min on: with both DWARF and headers, they
// show the two sources agree.
func PyenvHeaderBuilds(min string) ([]HeaderBuild, error) {
	m, err := pyversions.Parse(min)
	if err != nil {
		return nil, err
	}
	builds, err := FindBuilds()
	if err != nil {
		return nil, err
	}
	var out []HeaderBuild
	for _, b := range builds {
		if !b.Version.AtLeast(m.Major, m.Minor) {
			continue
		}
		prefix := filepath.Dir(filepath.Dir(b.Path))
		h, err := NewHeaderBuild(prefix, b.Version.MinorString(), "pyenv's "+b.Version.String())
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// FindPatchHeaderBuilds lists the headers of the other patch releases that
// .ci/sid-pythons unpacked under $CACHE/headers/VERSION.
func FindPatchHeaderBuilds() ([]HeaderBuild, error) {
	dirs, err := filepath.Glob(filepath.Join(SidCache(), "headers", "*", "usr", "include", "python*", "Python.h"))
	if err != nil {
		return nil, err
	}
	var out []HeaderBuild
	for _, d := range dirs {
		inc := filepath.Dir(d)
		prefix := filepath.Dir(filepath.Dir(inc))
		minor := strings.TrimPrefix(filepath.Base(inc), "python")
		h, err := NewHeaderBuild(prefix, minor, "Debian's libpython"+minor+"-dev")
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version.Less(out[j].Version) })
	return out, nil
}
