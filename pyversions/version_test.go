package pyversions

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		bad  bool
	}{
		{in: "3.11.7", want: Version{3, 11, 7, ""}},
		{in: "3.8.0rc1", want: Version{3, 8, 0, "rc1"}},
		{in: "3.13.0a4", want: Version{3, 13, 0, "a4"}},
		{in: "3.12", want: Version{3, 12, 0, ""}},
		{in: "2.7.18+", want: Version{2, 7, 18, ""}},
		{in: "three", bad: true},
		{in: "3.", bad: true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.bad || !tc.bad && got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFromHex(t *testing.T) {
	for _, tc := range []struct {
		hex  uint32
		want string
	}{
		{0x030b07f0, "3.11.7"},
		{0x030d00a4, "3.13.0a4"},
		{0x030800c1, "3.8.0rc1"},
		{0x030c00b2, "3.12.0b2"},
	} {
		if got := FromHex(tc.hex).String(); got != tc.want {
			t.Errorf("FromHex(%#x) = %s, want %s", tc.hex, got, tc.want)
		}
	}
}

func TestLess(t *testing.T) {
	order := []string{"2.7.18", "3.6.0", "3.6.15", "3.8.0a1", "3.8.0rc1", "3.8.0", "3.10.0", "3.11.2"}
	for i := 1; i < len(order); i++ {
		a, _ := Parse(order[i-1])
		b, _ := Parse(order[i])
		if !a.Less(b) || b.Less(a) {
			t.Errorf("want %s < %s", a, b)
		}
	}
}

func TestFileNameVersion(t *testing.T) {
	for _, tc := range []struct {
		name         string
		major, minor int
		ok           bool
	}{
		{"libpython3.11.so.1.0", 3, 11, true},
		{"/usr/bin/python3.6m", 3, 6, true},
		{"python2.7", 2, 7, true},
		{"python3", 0, 0, false},
		{"uwsgi", 0, 0, false},
	} {
		ma, mi, ok := FileNameVersion(tc.name)
		if ma != tc.major || mi != tc.minor || ok != tc.ok {
			t.Errorf("FileNameVersion(%q) = %d, %d, %v", tc.name, ma, mi, ok)
		}
	}
}

func TestLayoutFor(t *testing.T) {
	for _, s := range Supported() {
		v, _ := Parse(s + ".0")
		l, err := LayoutFor(v)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if l.Version.MinorString() != s {
			t.Errorf("LayoutFor(%s) gave %s", v, l.Version)
		}
	}
	_, err := LayoutFor(Version{Major: 3, Minor: 99})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || ue.Supported != SupportedRange() {
		t.Fatalf("LayoutFor(3.99) = %v, want UnsupportedError", err)
	}
	if got := ue.Error(); got != "python 3.99.0 is not supported (supported: "+SupportedRange()+")" {
		t.Errorf("message %q", got)
	}
}

func TestPatches(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want int64
	}{
		{"3.7.0", 1392},
		{"3.7.3", 1392},
		{"3.7.4", 1480},
		{"3.7.16", 1480},
	} {
		v, _ := Parse(tc.v)
		l, err := LayoutFor(v)
		if err != nil {
			t.Fatal(err)
		}
		if l.Runtime.TstateCurrent != tc.want {
			t.Errorf("%s: tstate_current at %d, want %d", tc.v, l.Runtime.TstateCurrent, tc.want)
		}
	}
	// The generated table itself must not be modified by LayoutFor.
	for _, g := range Generated() {
		if g.Version.MinorString() == "3.7" && g.Runtime.TstateCurrent != 1480 {
			t.Errorf("generated 3.7 table changed: %d", g.Runtime.TstateCurrent)
		}
	}
}

func TestDescribeRange(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "none"},
		{[]string{"3.11"}, "3.11"},
		{[]string{"3.6", "3.7", "3.8"}, "3.6–3.8"},
		{[]string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11"}, "2.7, 3.6–3.11"},
		{[]string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"}, "2.7, 3.6–3.13"},
		{[]string{"3.6", "3.8", "3.9"}, "3.6, 3.8–3.9"},
	} {
		if got := describeRange(tc.in); got != tc.want {
			t.Errorf("describeRange(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := SupportedRange(); got != describeRange(Supported()) {
		t.Errorf("SupportedRange() = %q", got)
	}
}
