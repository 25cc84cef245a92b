package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pyprof/pyprof/internal/sampler"
)

// session is what record and top share around a sampler: the signals
// that stop it, what bounds the run (the duration, the exit of a program
// pyprof launched, a signal), and the teardown, which stops sampling and
// ends a launched program with the status pyprof exits with.
type session struct {
	rt       *resolved
	s        *sampler.Sampler
	duration float64 // -d, 0 for none
	// sigs receives SIGINT, SIGTERM and the signals the caller asked
	// for, from before the sampler attaches until close.
	sigs chan os.Signal
	// ctx ends the run; cancel ends it early.
	ctx    context.Context
	cancel context.CancelFunc
	// stopSig is the signal that ended the run, if stopOnSignal saw one.
	stopSig os.Signal
	sampled chan struct{} // closed when run returns
	runErr  error         // what run returned
}

// openSession attaches a sampler to the target, watching for signals from
// before it does, so that a signal stops a wait for a launched program's
// interpreter. A program that exits before it can be sampled ends the
// session at once: that is said on stderr, followed by earlyNote, and the
// session is nil, with the program's status.
func openSession(rt *resolved, opts sampler.Options, duration float64, stderr io.Writer, earlyNote string, extra ...os.Signal) (*session, int, error) {
	ss := &session{rt: rt, duration: duration, sigs: make(chan os.Signal, 4), sampled: make(chan struct{})}
	signal.Notify(ss.sigs, append([]os.Signal{syscall.SIGINT, syscall.SIGTERM}, extra...)...)
	s, err := newSampler(rt, opts, ss.sigs)
	var early *exitedEarlyError
	if errors.As(err, &early) {
		signal.Stop(ss.sigs)
		fmt.Fprintf(stderr, "pyprof: %v%s\n", early, earlyNote)
		return nil, early.l.exitCode(), nil
	}
	if err != nil {
		signal.Stop(ss.sigs)
		return nil, 0, &targetError{pid: rt.root, err: err}
	}
	ss.s = s
	if duration > 0 {
		ss.ctx, ss.cancel = context.WithTimeout(context.Background(), seconds(duration))
	} else {
		ss.ctx, ss.cancel = context.WithCancel(context.Background())
	}
	if rt.launched != nil {
		go func() {
			<-rt.launched.done
			ss.cancel()
		}()
	}
	return ss, 0, nil
}

// close ends the run, detaches the sampler and stops watching signals.
func (ss *session) close() {
	ss.cancel()
	ss.s.Close()
	signal.Stop(ss.sigs)
}

// stopOnSignal ends the run at the first SIGINT or SIGTERM, kept in
// stopSig; a later one is the caller's to read from sigs.
func (ss *session) stopOnSignal() {
	go func() {
		select {
		case sig := <-ss.sigs:
			ss.stopSig = sig
			ss.cancel()
		case <-ss.ctx.Done():
		}
	}()
}

// run samples until the run ends and returns the sampler's error.
func (ss *session) run(emit func(sampler.Sample)) error {
	defer close(ss.sampled)
	ss.runErr = ss.s.Run(ss.ctx, emit)
	return ss.runErr
}

// start runs in the background; the run ends when sampling does.
func (ss *session) start(emit func(sampler.Sample)) {
	go func() {
		defer ss.cancel()
		ss.run(emit)
	}()
}

// wait waits for run to return, and returns its error.
func (ss *session) wait() error {
	<-ss.sampled
	return ss.runErr
}

// targetExited says whether the run ended because the target did.
func (ss *session) targetExited() bool {
	return errors.Is(ss.runErr, sampler.ErrTargetExited) || ss.rt.launched != nil && ss.rt.launched.exited()
}

// reason says what ended the run, as a launched program is told when it
// is ended: a signal, the duration, or else the sampling itself.
func (ss *session) reason() string {
	switch {
	case ss.stopSig != nil:
		return "stopped by " + signalName(ss.stopSig)
	case errors.Is(ss.ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("-d %g elapsed", ss.duration)
	}
	return "sampling ended"
}

// end stops sampling and waits for it to return. A program pyprof
// launched is then waited for if it exited (it may be a zombie about to
// be reaped), or else ended, saying why on w (sig is the signal that
// stopped pyprof, if one did); end returns its status, which pyprof exits
// with, or 0 for a target pyprof attached to.
func (ss *session) end(w io.Writer, why string, sig os.Signal) int {
	ss.cancel()
	ss.wait()
	l := ss.rt.launched
	if l == nil {
		return 0
	}
	if ss.targetExited() {
		l.waitExit(stopGrace)
	}
	return l.finish(w, why, sig)
}

// statusLine is record's progress on a terminal: one line, redrawn at most
// four times a second.
type statusLine struct {
	w     io.Writer
	start time.Time // of sampling
	last  time.Time // drawn
}

func (l *statusLine) show(st sampler.Stats) {
	if time.Since(l.last) < 250*time.Millisecond {
		return
	}
	l.last = time.Now()
	fmt.Fprintf(l.w, "\r\x1b[K%s  %d samples  %d errors  %d processes  lag %s",
		time.Since(l.start).Round(100*time.Millisecond), st.Stacks, st.Errors, st.Processes, st.MaxLag.Round(10*time.Microsecond))
}

// clear erases the line, if there is one, for a message or the end.
func (l *statusLine) clear() {
	if l != nil {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
}
