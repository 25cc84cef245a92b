package pyspy

import (
	"fmt"
	"testing"
)

// TestStartingThreads builds, in snapshots of real interpreters, the thread
// states of threads still being started: from 3.12 a state linked before
// its thread bound it (ident and native id 0), and from 3.7 to 3.11 a
// frameless copy of the thread that starts it (its ident and native id).
// Neither is a thread; a frameless thread of its own ident is. Each reader
// is opened over the patched memory, so attaching while a thread starts is
// tested too.
func TestStartingThreads(t *testing.T) {
	for _, tc := range []struct {
		file string
		kind string // "unbound": ids 0; "copy": the ids of another thread
	}{
		{"testdata/snapshots/pyenv-3.7.16.snap", "copy"},
		{"testdata/snapshots/pyenv-3.9.18.snap", "copy"},
		{"testdata/snapshots/pyenv-3.10.13.snap", "copy"},
		{"testdata/snapshots/pyenv-3.11.7.snap", "copy"},
		{"testdata/snapshots/pyenv-3.12.1.snap", "unbound"},
		{"testdata/snapshots/pyenv-3.13.0.snap", "unbound"},
		{"testdata/snapshots/sid-3.14.10.snap", "unbound"},
		{"testdata/snapshots/sid-3.15.2.snap", "unbound"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := loadTorn(t, tc.file)
			if len(f.threads) < 3 {
				t.Fatalf("%d threads in the snapshot", len(f.threads))
			}
			starter := f.deepest()
			var other Thread
			for _, th := range f.threads {
				if th.Addr != starter.Addr && len(th.Frames) > 0 {
					other = th
					break
				}
			}
			l := &f.r.l.Thread
			frameless := map[uint64][]byte{}
			for _, off := range []int64{l.Frame, l.CFrame, l.CurrentFrame} {
				if off >= 0 {
					frameless[other.Addr+uint64(off)] = u64(0)
				}
			}
			sample := func(patches map[uint64][]byte) []Thread {
				t.Helper()
				r := f.reader(t, &moving{Snapshot: f.snap, now: patches})
				threads, err := r.Sample(SampleOptions{NoNames: true})
				if err != nil {
					t.Fatal(err)
				}
				return threads
			}
			describe := func(threads []Thread) string {
				s := ""
				for _, th := range threads {
					s += fmt.Sprintf(" %#x(id %#x, %d frames)", th.Addr, th.ID, len(th.Frames))
				}
				return s
			}

			// A frameless thread of its own ident stays.
			got := sample(frameless)
			if th := threadOf(got, other.Addr); th == nil || len(th.Frames) != 0 || len(got) != len(f.threads) {
				t.Errorf("a thread without frames was lost or kept frames:%s", describe(got))
			}

			starting := map[uint64][]byte{}
			for a, b := range frameless {
				starting[a] = b
			}
			id, native := starter.ID, uint64(starter.NativeID)
			if tc.kind == "unbound" {
				id, native = 0, 0
			}
			starting[other.Addr+uint64(l.ThreadID)] = u64(id)
			if l.NativeThreadID >= 0 {
				starting[other.Addr+uint64(l.NativeThreadID)] = u64(native)
			}
			got = sample(starting)
			if threadOf(got, other.Addr) != nil || len(got) != len(f.threads)-1 {
				t.Errorf("the state of a thread being started is reported as a thread:%s", describe(got))
			}
			if th := threadOf(got, starter.Addr); th == nil || len(th.Frames) != len(starter.Frames) {
				t.Errorf("the starting thread lost its stack:%s", describe(got))
			}
		})
	}
}

// TestThreadsWithoutOSThreadID: a thread state with an ident but no OS
// thread id, where ids are known, is no running thread: from 3.11 one read
// between the two stores that bind it, before 3.11 one whose OS thread
// ended (the C library clears the id in struct pthread).
func TestThreadsWithoutOSThreadID(t *testing.T) {
	for _, file := range []string{
		"testdata/snapshots/pyenv-3.9.18.snap",
		"testdata/snapshots/pyenv-3.11.7.snap",
		"testdata/snapshots/pyenv-3.13.0.snap",
	} {
		t.Run(file, func(t *testing.T) {
			f := loadTorn(t, file)
			other := f.threads[len(f.threads)-1]
			patches := map[uint64][]byte{}
			l := &f.r.l.Thread
			const pthreadTid = 0x2d0 // any offset: the test supplies the bytes
			if l.NativeThreadID >= 0 {
				patches[other.Addr+uint64(l.NativeThreadID)] = u64(0)
			} else {
				for i, th := range f.threads {
					patches[th.ID+pthreadTid] = u32(uint32(1000 + i))
				}
				patches[other.ID+pthreadTid] = u32(0)
			}
			r := f.reader(t, &moving{Snapshot: f.snap, now: patches})
			if l.NativeThreadID < 0 {
				r.native = nativeIDs{offset: pthreadTid, found: true, settled: true}
			}
			got, err := r.Sample(SampleOptions{NoNames: true})
			if err != nil {
				t.Fatal(err)
			}
			if threadOf(got, other.Addr) != nil || len(got) != len(f.threads)-1 {
				t.Errorf("%d of %d threads; the one without an OS thread id is there: %v", len(got), len(f.threads), threadOf(got, other.Addr) != nil)
			}
			for _, th := range got {
				if th.NativeID == 0 {
					t.Errorf("thread %#x kept without an OS thread id", th.Addr)
				}
			}
		})
	}
}

// TestNameOfReusedIdent: the C library gives a finished thread's ident to
// the next thread it starts; until the names are read again, that thread
// is unnamed rather than named after the finished one.
func TestNameOfReusedIdent(t *testing.T) {
	f := loadTorn(t, "testdata/snapshots/pyenv-3.11.7.snap")
	var named Thread
	for _, th := range f.threads {
		if th.NativeID != 0 {
			named = th
		}
	}
	m := &moving{Snapshot: f.snap, later: map[uint64][]byte{
		named.Addr + uint64(f.r.l.Thread.NativeThreadID): u64(uint64(named.NativeID) + 100000),
	}}
	r := f.reader(t, m)
	sample := func() *Thread {
		t.Helper()
		threads, err := r.Sample(SampleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		th := threadOf(threads, named.Addr)
		if th == nil {
			t.Fatal("thread lost")
		}
		return th
	}
	if th := sample(); !th.HasName {
		t.Fatalf("thread %d has no name in the snapshot", th.NativeID)
	}
	m.moved = true // another OS thread under the same ident
	if th := sample(); th.HasName {
		t.Errorf("thread %d of a reused ident is named %q", th.NativeID, th.Name)
	}
	// The next refresh reads threading._active again, which here still
	// names the ident.
	for range recheckEvery {
		sample()
	}
	if th := sample(); !th.HasName {
		t.Errorf("thread %d not named after a refresh", th.NativeID)
	}
}
