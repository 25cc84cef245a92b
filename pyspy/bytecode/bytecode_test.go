package bytecode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyversions"
)

// codeDump prints, for every code object compiled from a slice of the
// standard library, its flags, stack size and bytecode.
const codeDump = `
import os, sys, types
root = os.path.dirname(os.__file__)
names = sorted(n for n in os.listdir(root) if n.endswith(".py"))[:120]
def walk(co):
    yield co
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c)
for n in names:
    try:
        src = open(os.path.join(root, n), "rb").read()
        top = compile(src, n, "exec")
    except Exception:
        continue
    for co in walk(top):
        print(co.co_flags, co.co_stacksize, co.co_code.hex(), n, co.co_name)
`

// TestStackDepthsMatchCompiler checks the depth analysis against the
// compiler's own: the deepest stack the analysis finds in a code object is
// never deeper than the stack the compiler gave it, and nearly always as
// deep. (Up to 3.9 the compiler sized the stack before its peephole pass
// folded constants, so a little shallower is right there; and 3.8's
// finally blocks, entered as subroutines, leave some code objects without
// depths, which only costs them the callable check.)
func TestStackDepthsMatchCompiler(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.8", "3.9", "3.10")) {
		t.Run(py.MinorVersion(), func(t *testing.T) {
			se := pyversions.StackEffectsFor(py.MinorVersion())
			if se == nil {
				t.Fatalf("no stack effects for %s", py.MinorVersion())
			}
			v, err := pyversions.Parse(py.MinorVersion())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, py.Path, "-c", codeDump).Output()
			if err != nil {
				t.Fatal(err)
			}
			var codes, failed, none, shallower int
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(nil, 1<<24)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				flags, _ := strconv.Atoi(f[0])
				size, _ := strconv.Atoi(f[1])
				code, err := hex.DecodeString(f[2])
				if err != nil {
					t.Fatal(err)
				}
				codes++
				depth := StackDepths(code, se, v.AtLeast(3, 10), StartDepth(v, flags))
				if depth == nil {
					none++
					t.Logf("%s %s: no depths", f[3], f[4])
					continue
				}
				deepest := 0
				for i, d := range depth {
					op := code[2*i]
					arg := int(code[2*i+1])
					if se.Known[op] && d >= 0 {
						if e, ok := se.Effect[op][0].Of(arg); ok {
							deepest = max(deepest, int(d)+max(e, 0))
						}
						if se.Jump[op] != pyversions.JumpNone {
							if e, ok := se.Effect[op][1].Of(arg); ok {
								deepest = max(deepest, int(d)+max(e, 0))
							}
						}
					}
					deepest = max(deepest, int(d))
				}
				switch {
				case deepest > size:
					if failed++; failed < 10 {
						t.Errorf("%s %s: deepest stack %d, compiler's %d", f[3], f[4], deepest, size)
					}
				case deepest < size:
					shallower++
				}
			}
			t.Logf("%d code objects: %d without depths, %d shallower than the compiler's", codes, none, shallower)
			if codes < 1000 || 50*(none+shallower) > codes {
				t.Errorf("%d code objects: %d without depths, %d shallower", codes, none, shallower)
			}
		})
	}
}

// asm assembles 3.9 bytecode from opcode, argument pairs.
func asm(ops ...int) []byte {
	b := make([]byte, len(ops))
	for i, v := range ops {
		b[i] = byte(v)
	}
	return b
}

// 3.9 opcodes the table tests use.
const (
	opPopTop       = 1
	opReturnValue  = 83
	opLoadConst    = 100
	opBuildTuple   = 102
	opJumpForward  = 110
	opPopJumpFalse = 114
	opLoadGlobal   = 116
	opSetupFinally = 122
	opLoadFast     = 124
	opStoreFast    = 125
	opCallFunction = 131
	opExtendedArg  = 144
	opLoadMethod   = 160
	opCallMethod   = 161
)

func TestStackDepths(t *testing.T) {
	se := pyversions.StackEffectsFor("3.9")
	if se == nil {
		t.Fatal("no 3.9 stack effects")
	}
	cases := []struct {
		name  string
		code  []byte
		depth []int16 // nil: no depths
	}{
		{"call", asm(opLoadGlobal, 0, opLoadFast, 0, opCallFunction, 1, opReturnValue, 0), []int16{0, 1, 2, 1}},
		{"branches meet", asm(opLoadFast, 0, opPopJumpFalse, 8, opLoadConst, 0, opReturnValue, 0, opLoadConst, 1, opReturnValue, 0),
			[]int16{0, 1, 0, 1, 0, 1}},
		{"handler depth", asm(opSetupFinally, 4, opLoadConst, 0, opReturnValue, 0, opPopTop, 0), []int16{0, 0, 1, 6}},
		{"extended argument", asm(opExtendedArg, 0, opLoadFast, 1, opReturnValue, 0), []int16{0, 0, 1}},
		{"unreachable code", asm(opLoadConst, 0, opReturnValue, 0, opPopTop, 0), []int16{0, 1, -1}},
		{"paths disagree", asm(opLoadFast, 0, opPopJumpFalse, 6, opLoadConst, 0, opJumpForward, 0, opReturnValue, 0), nil},
		{"jump outside the code", asm(opJumpForward, 200), nil},
		{"unknown opcode", asm(0, 0), nil},
		{"stack below empty", asm(opPopTop, 0), nil},
		{"empty", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := StackDepths(c.code, se, false, 0)
			if (got == nil) != (c.depth == nil) || !slices.Equal(got, c.depth) {
				t.Errorf("depths %v, want %v", got, c.depth)
			}
		})
	}
}

func TestCallSlots(t *testing.T) {
	se := pyversions.StackEffectsFor("3.9")
	cases := []struct {
		name             string
		code             []byte
		unit             int
		method, callable int
		ok               bool
	}{
		{"function", asm(opLoadGlobal, 0, opLoadFast, 0, opLoadFast, 1, opCallFunction, 2, opReturnValue, 0), 3, -1, 0, true},
		{"method", asm(opLoadFast, 0, opLoadMethod, 0, opLoadFast, 1, opCallMethod, 1, opReturnValue, 0), 3, 0, 1, true},
		{"over a value", asm(opLoadConst, 0, opLoadGlobal, 0, opCallFunction, 0, opBuildTuple, 2, opReturnValue, 0), 2, -1, 1, true},
		{"not a call", asm(opLoadGlobal, 0, opCallFunction, 0, opReturnValue, 0), 0, 0, 0, false},
		{"unknown depth", asm(opLoadConst, 0, opReturnValue, 0, opCallFunction, 0), 2, 0, 0, false},
		{"past the code", asm(opLoadGlobal, 0, opCallFunction, 0), 9, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			depth := StackDepths(c.code, se, false, 0)
			if depth == nil {
				depth = make([]int16, len(c.code)/2)
				for i := range depth {
					depth[i] = -1
				}
			}
			m, callable, ok := CallSlots(c.code, depth, se, c.unit)
			if ok != c.ok || ok && (m != c.method || callable != c.callable) {
				t.Errorf("slots %d, %d, %v; want %d, %d, %v", m, callable, ok, c.method, c.callable, c.ok)
			}
		})
	}
}

func TestKeptArgs(t *testing.T) {
	se := pyversions.StackEffectsFor("3.9")
	cases := []struct {
		name            string
		code            []byte
		argcount, cells int
		want            int
	}{
		{"reads only", asm(opLoadFast, 0, opLoadFast, 1, opReturnValue, 0), 2, 0, 2},
		{"rebinds the second", asm(opLoadConst, 0, opStoreFast, 1, opLoadFast, 0, opReturnValue, 0), 3, 0, 1},
		{"stores a local", asm(opLoadConst, 0, opStoreFast, 2, opLoadFast, 0, opReturnValue, 0), 2, 0, 2},
		{"wide store", asm(opLoadConst, 0, opExtendedArg, 1, opStoreFast, 0, opReturnValue, 0), 2, 0, 2},
		{"cells", asm(opLoadFast, 0, opReturnValue, 0), 1, 1, 0},
	}
	for _, c := range cases {
		if got := KeptArgs(c.code, se, c.argcount, c.cells); got != c.want {
			t.Errorf("%s: %d kept, want %d", c.name, got, c.want)
		}
	}
}

// FuzzStackDepths feeds arbitrary bytecode to the depth analysis and the
// call decoding: they must end, without panicking, in bounds.
func FuzzStackDepths(f *testing.F) {
	f.Add(asm(opLoadGlobal, 0, opLoadFast, 0, opCallFunction, 1, opReturnValue, 0), 3)
	f.Add(asm(opSetupFinally, 4, opLoadConst, 0, opReturnValue, 0, opPopTop, 0), 1)
	f.Add(asm(opExtendedArg, 255, opExtendedArg, 255, opJumpForward, 255), 0)
	f.Fuzz(func(t *testing.T, code []byte, unit int) {
		for _, m := range pyversions.StackEffectMinors() {
			se := pyversions.StackEffectsFor(m)
			depth := StackDepths(code, se, m == "3.10", 0)
			if depth != nil && len(depth) != len(code)/2 {
				t.Fatalf("%d depths for %d units", len(depth), len(code)/2)
			}
			for _, d := range depth {
				if d > maxStackDepth {
					t.Fatalf("depth %d", d)
				}
			}
			if depth != nil {
				if _, c, ok := CallSlots(code, depth, se, unit); ok && c < 0 {
					t.Fatalf("callable slot %d", c)
				}
			}
			if k := KeptArgs(code, se, 5, 0); k < 0 || k > 5 {
				t.Fatalf("%d args kept of 5", k)
			}
		}
	})
}
