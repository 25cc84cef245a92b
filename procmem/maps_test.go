package procmem

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMaps(t *testing.T) {
	f, err := os.Open("testdata/maps/python.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := ParseMaps(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x400000, End: 0x41f000, Perms: "r--p", Offset: 0, Dev: "fe:00", Inode: 262371, Path: "/usr/bin/python3.11"},
		{Start: 0x41f000, End: 0x6d2000, Perms: "r-xp", Offset: 0x1f000, Dev: "fe:00", Inode: 262371, Path: "/usr/bin/python3.11"},
		{Start: 0x945000, End: 0x946000, Perms: "r--p", Offset: 0x544000, Dev: "fe:00", Inode: 262371, Path: "/usr/bin/python3.11"},
		{Start: 0x218e000, End: 0x226b000, Perms: "rw-p", Dev: "00:00", Path: "[heap]"},
		{Start: 0x7f1c2c000000, End: 0x7f1c2c021000, Perms: "rw-p", Dev: "00:00"},
		{Start: 0x7f1c33a00000, End: 0x7f1c33a28000, Perms: "r--p", Dev: "fe:00", Inode: 1835123, Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{Start: 0x7f1c33c00000, End: 0x7f1c33c02000, Perms: "r--p", Dev: "00:1f", Inode: 4242, Path: "/opt/my app/lib (v2)/libfoo.so"},
		{Start: 0x7f1c33c02000, End: 0x7f1c33c04000, Perms: "r-xp", Offset: 0x2000, Dev: "00:1f", Inode: 4242, Path: "/opt/my app/lib (v2)/libfoo.so"},
		{Start: 0x7f1c33d00000, End: 0x7f1c33d40000, Perms: "r-xp", Offset: 0x1000, Dev: "08:01", Inode: 99, Path: "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", Deleted: true},
		{Start: 0x7f1c33e00000, End: 0x7f1c33e01000, Perms: "rw-s", Dev: "00:01", Inode: 1031, Path: "/memfd:shm", Deleted: true},
		{Start: 0x7f1c33f00000, End: 0x7f1c33f01000, Perms: "rw-p", Dev: "00:00", Path: "[anon:glibc malloc]"},
		{Start: 0x7ffc6e3f2000, End: 0x7ffc6e413000, Perms: "rw-p", Dev: "00:00", Path: "[stack]"},
		{Start: 0x7ffc6e5a4000, End: 0x7ffc6e5a8000, Perms: "r--p", Dev: "00:00", Path: "[vvar]"},
		{Start: 0x7ffc6e5a8000, End: 0x7ffc6e5aa000, Perms: "r-xp", Dev: "00:00", Path: "[vdso]"},
		{Start: 0xffffffffff600000, End: 0xffffffffff601000, Perms: "--xp", Dev: "00:00", Path: "[vsyscall]"},
	}
	if len(maps) != len(want) {
		t.Fatalf("got %d mappings, want %d", len(maps), len(want))
	}
	for i := range want {
		if maps[i] != want[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+1, maps[i], want[i])
		}
	}
}

func TestParseMapsErrors(t *testing.T) {
	for _, tc := range []struct{ name, line string }{
		{"too few fields", "00400000-0041f000 r--p 00000000 fe:00"},
		{"no dash", "00400000 r--p 00000000 fe:00 1 /x"},
		{"bad start", "0040g000-0041f000 r--p 00000000 fe:00 1 /x"},
		{"bad end", "00400000-zz r--p 00000000 fe:00 1 /x"},
		{"end before start", "00500000-00400000 r--p 00000000 fe:00 1 /x"},
		{"short perms", "00400000-0041f000 r-p 00000000 fe:00 1 /x"},
		{"bad offset", "00400000-0041f000 r--p 0x100 fe:00 1 /x"},
		{"bad device", "00400000-0041f000 r--p 00000000 fe00 1 /x"},
		{"bad inode", "00400000-0041f000 r--p 00000000 fe:00 -1 /x"},
		{"double space", "00400000-0041f000  r--p 00000000 fe:00 1 /x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maps, err := ParseMaps(strings.NewReader("00400000-0041f000 r--p 00000000 fe:00 1 /ok\n" + tc.line + "\n"))
			if err == nil {
				t.Fatalf("parsed %+v", maps)
			}
			if !strings.Contains(err.Error(), "line 2") {
				t.Errorf("error %q does not name line 2", err)
			}
		})
	}
}

func TestParseMapsOwn(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	maps, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var sawExe, sawStack bool
	for i, m := range maps {
		if i > 0 && m.Start < maps[i-1].End {
			t.Errorf("mapping %d overlaps the previous one: %v", i, m)
		}
		sawExe = sawExe || m.Path == exe
		sawStack = sawStack || m.Path == "[stack]"
	}
	if !sawExe || !sawStack {
		t.Errorf("test binary mapped: %v, [stack]: %v", sawExe, sawStack)
	}
}

// String must produce what the kernel prints, so that fixtures can be
// written from Mappings and the fuzzer can check a round trip.
func TestMappingString(t *testing.T) {
	files, err := filepath.Glob("testdata/maps/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			maps, err := ParseMaps(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			for _, m := range maps {
				out.WriteString(m.String() + "\n")
			}
			// Some kernels leave a trailing space on anonymous lines.
			want := strings.ReplaceAll(string(b), " \n", "\n")
			if out.String() != want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), want)
			}
		})
	}
}

func FuzzParseMaps(f *testing.F) {
	seeds, err := filepath.Glob("testdata/maps/*.txt")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		maps, err := ParseMaps(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for _, m := range maps {
			if m.End < m.Start || len(m.Perms) != 4 {
				t.Fatalf("accepted bad mapping %+v", m)
			}
			again, err := ParseMaps(strings.NewReader(m.String()))
			if err != nil {
				t.Fatalf("reparse %q: %v", m.String(), err)
			}
			if len(again) != 1 || !reflect.DeepEqual(again[0], m) {
				t.Fatalf("round trip of %+v gave %+v", m, again)
			}
		}
	})
}
