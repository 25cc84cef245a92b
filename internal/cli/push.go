package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/pyprof/pyprof/internal/proctree"
	"github.com/pyprof/pyprof/internal/push"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/procmem"
)

// pushOptions are record's flags for pushing to Pyroscope.
type pushOptions struct {
	url      string
	interval float64 // seconds
	app      string
	tags     []string
	queue    int
	timeout  float64 // seconds
	ca       string
	user     string
	password string
	token    string
	tenant   string
}

// pushFlush bounds how long record sends what is left after sampling
// stops, so that a server that is down cannot hold pyprof up.
const pushFlush = 10 * time.Second

// The defaults of the numeric push flags, filled in by check when --push
// is given: without it, pushOptions stays zero.
const (
	defaultPushInterval = 10 // seconds
	defaultPushQueue    = 30 // intervals: 5 minutes at the default interval
	defaultPushTimeout  = 10 // seconds
)

func (o *pushOptions) register(fs *pflag.FlagSet) {
	fs.Var(&argString{&o.url, "URL"}, "push", "push a profile every --push-interval to the Grafana Pyroscope server at this base URL (http or https, user:password@ allowed)")
	floatVar(fs, &floatFlag{p: &o.interval, min: 1, max: 3600, unit: "seconds", arg: "SECONDS"},
		"push-interval", "", 0, fmt.Sprintf("with --push, seconds each pushed profile covers, 1 to 3600 (default %d)", defaultPushInterval))
	fs.Var(&argString{&o.app, "NAME"}, "app", "with --push, the service_name label (default: the target's command name)")
	fs.Var(&tagList{&o.tags}, "tag", "with --push, a label for every series (repeatable)")
	fs.Var(&argInt{p: &o.queue, min: 1, max: 100000, arg: "N"}, "push-queue",
		fmt.Sprintf("with --push, intervals kept for retrying while the server is unreachable, 1 to 100000; the oldest is dropped first (default %d)", defaultPushQueue))
	floatVar(fs, &floatFlag{p: &o.timeout, min: 0.1, max: 600, unit: "seconds", arg: "SECONDS"},
		"push-timeout", "", 0, fmt.Sprintf("with --push, seconds one upload may take, 0.1 to 600 (default %d)", defaultPushTimeout))
	fs.Var(&argString{&o.ca, "FILE"}, "push-ca", "with --push, a PEM file of the CA certificates to trust instead of the system's")
	fs.Var(&argString{&o.user, "USER"}, "push-user", "with --push, the basic auth user (or $PYPROF_PUSH_USER)")
	fs.Var(&argString{&o.password, "PASSWORD"}, "push-password", "with --push, the basic auth password (or $PYPROF_PUSH_PASSWORD, which ps does not show)")
	fs.Var(&argString{&o.token, "TOKEN"}, "push-token", "with --push, a bearer token (or $PYPROF_PUSH_TOKEN, which ps does not show)")
	fs.Var(&argString{&o.tenant, "TENANT"}, "push-tenant", "with --push, the tenant, sent as X-Scope-OrgID")
}

// argString is a string flag whose value help names arg (printFlags
// shows a flag's Type).
type argString struct {
	p   *string
	arg string
}

func (f *argString) Set(s string) error { *f.p = s; return nil }
func (f *argString) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}
func (f *argString) Type() string { return f.arg }

// argInt is an int flag in [min, max] whose value help names arg.
type argInt struct {
	p        *int
	min, max int
	arg      string
}

func (f *argInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return &rangeError{fmt.Sprintf("must be a whole number from %d to %d", f.min, f.max)}
	}
	*f.p = v
	return nil
}
func (f *argInt) String() string {
	if f.p == nil || *f.p == 0 {
		return ""
	}
	return strconv.Itoa(*f.p)
}
func (f *argInt) Type() string { return f.arg }

// tagList collects the repeated --tag.
type tagList struct{ p *[]string }

func (f *tagList) Set(s string) error { *f.p = append(*f.p, s); return nil }
func (f *tagList) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}
func (f *tagList) Type() string { return "KEY=VALUE" }

// tagKey is a label name as Pyroscope (and Prometheus) take it.
var tagKey = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// check validates the flags and fills in the credentials from the
// environment; fs tells which flags were given.
func (o *pushOptions) check(fs *pflag.FlagSet) ([]push.Label, error) {
	if o.url == "" {
		for _, name := range []string{"push-interval", "app", "tag", "push-queue", "push-timeout", "push-ca", "push-user", "push-password", "push-token", "push-tenant"} {
			if fs.Changed(name) {
				return nil, usagef("--%s needs --push", name)
			}
		}
		return nil, nil
	}
	if o.interval == 0 {
		o.interval = defaultPushInterval
	}
	if o.queue == 0 {
		o.queue = defaultPushQueue
	}
	if o.timeout == 0 {
		o.timeout = defaultPushTimeout
	}
	var tags []push.Label
	for _, t := range o.tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || !tagKey.MatchString(k) || v == "" {
			return nil, usagef("--tag %q: want KEY=VALUE, KEY a label name (letters, digits, _)", t)
		}
		switch k {
		case "service_name", "pid", "command", "__name__":
			return nil, usagef("--tag %s: pyprof sets that label itself (use --app for service_name)", k)
		}
		tags = append(tags, push.Label{Name: k, Value: v})
	}
	envs := []struct {
		p   *string
		env string
	}{{&o.user, "PYPROF_PUSH_USER"}, {&o.password, "PYPROF_PUSH_PASSWORD"}, {&o.token, "PYPROF_PUSH_TOKEN"}}
	for _, e := range envs {
		if *e.p == "" {
			*e.p = os.Getenv(e.env)
		}
	}
	if o.password != "" && o.user == "" {
		return nil, usagef("--push-password needs --push-user")
	}
	return tags, nil
}

// connect checks the URL and credentials against the server before
// sampling starts: a wrong URL or refused credentials end pyprof now, a
// server that is down only delays the first push.
func (o *pushOptions) connect(stderr io.Writer) (*push.Client, error) {
	c, err := push.NewClient(push.Config{
		URL: o.url, User: o.user, Password: o.password, Token: o.token, Tenant: o.tenant,
		CAFile: o.ca, Timeout: seconds(o.timeout),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), seconds(o.timeout))
	defer cancel()
	if err := c.Probe(ctx); err != nil {
		if push.FateOf(err) == push.Fatal {
			c.Close()
			return nil, err
		}
		fmt.Fprintf(stderr, "pyprof: %v; sampling anyway, pushes will be retried\n", err)
	}
	return c, nil
}

// pushing cuts record's samples into intervals and pushes them.
type pushing struct {
	rec    *push.Recorder
	enc    push.Encoder
	p      *push.Pusher
	c      *push.Client
	every  time.Duration
	names  map[int]string // command names of the last interval's pids
	used   map[int]string // and of this one's
	log    func(string)
	stop   chan struct{}
	done   chan struct{}
	failed func() // called once if pushing fails for good
}

func startPushing(c *push.Client, o *pushOptions, tags []push.Label, root int, rate float64, idle bool, log func(string), failed func()) *pushing {
	ps := &pushing{
		c: c, every: seconds(o.interval), names: map[int]string{}, used: map[int]string{}, log: log,
		stop: make(chan struct{}), done: make(chan struct{}), failed: failed,
	}
	app := o.app
	if app == "" {
		app = commandName(root)
	}
	ps.enc = push.Encoder{App: app, Tags: tags, Command: ps.command}
	ps.rec = push.NewRecorder(time.Now(), rate, idle)
	ps.p = push.Start(c, push.Options{Queue: o.queue, Log: log})
	go ps.loop()
	return ps
}

// commandName is the process's command name, or "python" if it is gone.
func commandName(pid int) string {
	if p, err := proctree.Get(procmem.DefaultFS, pid); err == nil && p.Name() != "" {
		return p.Name()
	}
	return "python"
}

// command names a pid for its series, from the last interval's names or
// /proc; names are kept only for the pids of the last interval, so that a
// program that forks a worker per task does not grow the map.
func (ps *pushing) command(pid int) string {
	n, ok := ps.names[pid]
	if !ok {
		if p, err := proctree.Get(procmem.DefaultFS, pid); err == nil {
			n = p.Name()
		}
	}
	ps.used[pid] = n
	return n
}

// loop cuts an interval at each boundary until stopped.
func (ps *pushing) loop() {
	defer close(ps.done)
	for {
		next := push.NextBoundary(time.Now(), ps.every)
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
			ps.cut(next)
		case <-ps.p.Failed():
			t.Stop()
			ps.failed()
			return
		case <-ps.stop:
			t.Stop()
			return
		}
	}
}

func (ps *pushing) cut(end time.Time) {
	iv, err := ps.enc.Encode(ps.rec.Cut(end))
	ps.names, ps.used = ps.used, ps.names
	clear(ps.used)
	if err != nil {
		// Only a bug makes a profile unencodable; the interval is lost
		// and said to be.
		ps.log(fmt.Sprintf("dropped an interval: %v", err))
		return
	}
	if iv.Body != nil {
		ps.p.Add(iv)
	}
}

// finish pushes the last, partial interval and what is queued, within
// ctx, and returns the counts.
func (ps *pushing) finish(ctx context.Context) push.Stats {
	close(ps.stop)
	<-ps.done
	if ps.p.Err() == nil {
		ps.cut(time.Now())
	}
	st := ps.p.Close(ctx)
	ps.c.Close()
	return st
}

// addToo returns emit that also adds the sample to the interval.
func (ps *pushing) addToo(emit func(sampler.Sample)) func(sampler.Sample) {
	return func(smp sampler.Sample) {
		emit(smp)
		ps.rec.Add(smp)
	}
}

// end pushes what is left once sampling has stopped, within pushFlush or
// until a second signal, and says how pushing went. done says record has
// nothing more to do: pushing failed for good (err says why), or there is
// no file to write, and then code is what pyprof exits with.
func (ps *pushing) end(ss *session, stderr io.Writer, runErr error, elapsed time.Duration, only bool) (code int, done bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), pushFlush)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case sig := <-ss.sigs:
			ps.log(fmt.Sprintf("%v while pushing: what is not pushed yet is dropped", sig))
			cancel()
		case <-ctx.Done():
		}
	}()
	st := ps.finish(ctx)
	cancel()
	<-watched
	sst := ss.s.Stats()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(sst.Rounds) / elapsed.Seconds()
	}
	fmt.Fprintf(stderr, "pyprof: pushed %d intervals (%d samples) to %s as service_name=%s: %d retries, %d dropped from a full queue, %d refused, %d not pushed; sampled %d rounds, %d errors, %d processes, %.1f s, %.1f Hz achieved\n",
		st.Pushed, st.Samples, ps.c.URL(), ps.enc.App, st.Retries, st.Dropped, st.Rejected, st.Unsent,
		sst.Rounds, sst.Errors, len(sst.Seen), elapsed.Seconds(), rate)
	if err := ps.p.Err(); err != nil {
		if only {
			return 0, true, err
		}
		// The file is still written.
		fmt.Fprintf(stderr, "pyprof: %v\n", err)
	}
	if !only {
		return 0, false, nil
	}
	if runErr != nil && !errors.Is(runErr, sampler.ErrTargetExited) {
		return 0, true, samplingError(runErr)
	}
	if ss.targetExited() {
		fmt.Fprintln(stderr, "pyprof: the target exited")
	}
	return ss.end(stderr, ss.reason(), ss.stopSig), true, nil
}
