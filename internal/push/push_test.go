package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pprof "github.com/google/pprof/profile"

	"github.com/pyprof/pyprof/internal/profile"
)

// fakeSender answers each Push with the next of its errors (nil once
// they run out) and records the bodies.
type fakeSender struct {
	mu     sync.Mutex
	errs   []error
	bodies []string
}

func (f *fakeSender) Push(ctx context.Context, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, string(body))
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	if len(f.errs) > 1 {
		f.errs = f.errs[1:]
	}
	return err
}

func (f *fakeSender) URL() string { return "http://fake" }

// logs collects a Pusher's lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) log(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *logs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func interval(i int) Interval {
	start := t0.Add(time.Duration(i) * 10 * time.Second)
	return Interval{Start: start, End: start.Add(10 * time.Second), Body: []byte(fmt.Sprint(i)), Processes: 1, Samples: 100}
}

var errDown = errors.New("connection refused")

func TestQueueBound(t *testing.T) {
	for _, tt := range []struct {
		queue, add  int
		wantDropped int
	}{
		{queue: 1, add: 1, wantDropped: 0},
		{queue: 2, add: 5, wantDropped: 3},
		{queue: 3, add: 3, wantDropped: 0},
		{queue: 3, add: 10, wantDropped: 7},
	} {
		t.Run(fmt.Sprintf("%d/%d", tt.queue, tt.add), func(t *testing.T) {
			// The server stays down, and retries wait an hour.
			var l logs
			p := Start(&fakeSender{errs: []error{errDown}}, Options{Queue: tt.queue, Log: l.log, Backoff: func(int) time.Duration { return time.Hour }})
			for i := range tt.add {
				p.Add(interval(i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			st := p.Close(ctx)
			if st.Dropped != tt.wantDropped || st.Unsent != tt.add-tt.wantDropped || st.Pushed != 0 {
				t.Errorf("stats %+v, want %d dropped from the queue, %d unsent", st, tt.wantDropped, tt.add-tt.wantDropped)
			}
			// The oldest go first, each said once.
			var dropped []string
			for _, line := range l.all() {
				if strings.HasPrefix(line, "dropped ") && strings.Contains(line, "queue") {
					dropped = append(dropped, line)
				}
			}
			if len(dropped) != tt.wantDropped {
				t.Fatalf("%d queue drops logged, want %d: %q", len(dropped), tt.wantDropped, l.all())
			}
			for i, line := range dropped {
				if want := "dropped " + span(interval(i)); !strings.HasPrefix(line, want) {
					t.Errorf("drop %d: %q, want it to begin %q", i, line, want)
				}
			}
		})
	}
}

func TestRetriedInOrder(t *testing.T) {
	f := &fakeSender{errs: []error{errDown, errDown, nil}}
	var l logs
	var attempts []int
	var mu sync.Mutex
	p := Start(f, Options{Queue: 10, Log: l.log, Backoff: func(a int) time.Duration {
		mu.Lock()
		attempts = append(attempts, a)
		mu.Unlock()
		return time.Millisecond
	}})
	for i := range 3 {
		p.Add(interval(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Pushed < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := p.Close(context.Background())
	if st.Pushed != 3 || st.Retries != 2 || st.Dropped+st.Unsent+st.Rejected != 0 || st.Samples != 300 {
		t.Errorf("stats %+v, want 3 pushed after 2 retries", st)
	}
	if want := []string{"0", "0", "0", "1", "2"}; !slices.Equal(f.bodies, want) {
		t.Errorf("sent %q, want %q", f.bodies, want)
	}
	if !slices.Equal(attempts, []int{1, 2}) {
		t.Errorf("backoff asked for attempts %v, want [1 2]", attempts)
	}
	lines := l.all()
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "retrying ") || !strings.HasPrefix(lines[2], "pushed ") {
		t.Errorf("log %q, want 2 retrying lines and 3 pushed lines", lines)
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		attempt int
		base    time.Duration // the wait lies in [base/2, base)
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second},
		{5, 16 * time.Second}, {6, 30 * time.Second}, {7, 30 * time.Second}, {40, 30 * time.Second},
		{0, 30 * time.Second}, {-1, 30 * time.Second},
	} {
		lo, hi := Backoff(tt.attempt, 0), Backoff(tt.attempt, 0.999999)
		if lo != tt.base/2 || hi >= tt.base || hi < tt.base*99/100 {
			t.Errorf("attempt %d: waits from %v to %v, want [%v, %v)", tt.attempt, lo, hi, tt.base/2, tt.base)
		}
		for range 100 {
			if d := DefaultBackoff(tt.attempt); d < tt.base/2 || d >= tt.base {
				t.Fatalf("attempt %d: DefaultBackoff %v outside [%v, %v)", tt.attempt, d, tt.base/2, tt.base)
			}
		}
	}
}

func TestFate(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want Fate
	}{
		{errDown, Retry},
		{&Error{Status: 500}, Retry},
		{&Error{Status: 503}, Retry},
		{&Error{Status: 429}, Retry},
		{&Error{Status: 400}, Reject},
		{&Error{Status: 413}, Reject},
		{&Error{Status: 401}, Fatal},
		{&Error{Status: 403}, Fatal},
		{&Error{Status: 404}, Fatal},
		{&Error{Status: 302}, Fatal},
		{fmt.Errorf("wrapped: %w", &Error{Status: 401}), Fatal},
		{&hostError{"x"}, Fatal},
	} {
		if got := FateOf(tt.err); got != tt.want {
			t.Errorf("FateOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// pyroscopeLike answers as Pyroscope does: an empty push is a 400
// invalid_argument, a push with series a 200, after checking the basic
// auth or token the test set; it records the requests' headers.
type pyroscopeLike struct {
	creds
	status int // forced answer, if not 0

	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
}

// creds are what a pyroscopeLike requires.
type creds struct{ user, password, token, tenant string }

func (s *pyroscopeLike) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	if r.URL.Path != pushPath {
		http.NotFound(w, r)
		return
	}
	u, p, ok := r.BasicAuth()
	switch {
	case s.status != 0:
		w.WriteHeader(s.status)
		fmt.Fprintf(w, `{"code":"unavailable","message":"forced %d"}`, s.status)
		return
	case s.user != "" && (!ok || u != s.user || p != s.password),
		s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token,
		s.tenant != "" && r.Header.Get("X-Scope-OrgID") != s.tenant:
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":"unauthenticated","message":"invalid credentials"}`)
		return
	}
	if string(body) == `{"series":[]}` {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":"invalid_argument","message":"no profiles received"}`)
		return
	}
	io.WriteString(w, `{}`)
}

func TestCredentialsNotPrinted(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, tt := range []struct {
		name  string
		creds creds
		cfg   func(base string) Config // base is http://host:port
	}{
		{"URL userinfo", creds{user: "alice", password: secret}, func(b string) Config {
			return Config{URL: strings.Replace(b, "://", "://alice:"+secret+"@", 1)}
		}},
		{"basic flags", creds{user: "alice", password: secret}, func(b string) Config {
			return Config{URL: b, User: "alice", Password: secret}
		}},
		{"flags over URL", creds{user: "alice", password: secret}, func(b string) Config {
			return Config{URL: strings.Replace(b, "://", "://bob:wrong-"+secret+"@", 1), User: "alice", Password: secret}
		}},
		{"bearer", creds{token: secret}, func(b string) Config {
			return Config{URL: b, Token: secret}
		}},
		{"tenant", creds{token: secret, tenant: "team-a"}, func(b string) Config {
			return Config{URL: b, Token: secret, Tenant: "team-a"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var messages []string
			check := func(what string, err error) {
				if err != nil {
					messages = append(messages, what+": "+err.Error())
				}
			}
			// Accepted: the probe passes and a push goes through.
			server := &pyroscopeLike{creds: tt.creds}
			srv := httptest.NewServer(server)
			defer srv.Close()
			c, err := NewClient(tt.cfg(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Probe(context.Background()); err != nil {
				t.Fatalf("probe with the right credentials: %v", err)
			}
			if err := c.Push(context.Background(), []byte(`{"series":[{}]}`)); err != nil {
				t.Fatalf("push with the right credentials: %v", err)
			}
			messages = append(messages, c.URL())
			c.Close()
			// Refused: a wrong password, token or tenant.
			bad := &pyroscopeLike{creds: tt.creds}
			bad.password, bad.token = "other", strings.Repeat("x", len(bad.token))
			if tt.creds.tenant != "" {
				bad.token, bad.tenant = tt.creds.token, "team-b"
			}
			srv2 := httptest.NewServer(bad)
			defer srv2.Close()
			c2, err := NewClient(tt.cfg(srv2.URL))
			if err != nil {
				t.Fatal(err)
			}
			err = c2.Probe(context.Background())
			if FateOf(err) != Fatal || !strings.Contains(fmt.Sprint(err), "refused the credentials") {
				t.Errorf("probe with refused credentials: %v (fate %v), want a fatal refusal", err, FateOf(err))
			}
			check("refused", err)
			// A server error, a server that is down, a redirect, and
			// the Pusher's log lines about them.
			for _, status := range []int{http.StatusServiceUnavailable, http.StatusFound} {
				srv3 := httptest.NewServer(&pyroscopeLike{creds: tt.creds, status: status})
				c3, _ := NewClient(tt.cfg(srv3.URL))
				check(fmt.Sprint(status), c3.Push(context.Background(), []byte("{}")))
				var l logs
				p := Start(c3, Options{Queue: 2, Log: l.log, Backoff: func(int) time.Duration { return time.Millisecond }})
				p.Add(interval(0))
				time.Sleep(20 * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				p.Close(ctx)
				cancel()
				messages = append(messages, l.all()...)
				check("pusher", p.Err())
				srv3.Close()
			}
			down := tt.cfg("http://127.0.0.1:" + freePort(t))
			c4, _ := NewClient(down)
			check("down", c4.Probe(context.Background()))
			// A URL that does not parse or has the wrong scheme.
			for _, u := range []string{"http://alice:" + secret + "@[::1", "ftp://alice:" + secret + "@example.com", "http://alice:" + secret + "@"} {
				_, err := NewClient(Config{URL: u})
				if err == nil {
					t.Errorf("NewClient(%q) took it", Redact(u))
				}
				check("bad URL", err)
			}
			if len(messages) < 8 {
				t.Errorf("only %d messages: %q", len(messages), messages)
			}
			for _, m := range messages {
				if strings.Contains(m, secret) {
					t.Errorf("message holds the secret: %s", m)
				}
			}
			// And the server got them as it should.
			h := server.headers[0]
			if tt.creds.tenant != "" && h.Get("X-Scope-OrgID") != tt.creds.tenant {
				t.Errorf("X-Scope-OrgID %q, want %q", h.Get("X-Scope-OrgID"), tt.creds.tenant)
			}
		})
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

func TestWrongURL(t *testing.T) {
	srv := httptest.NewServer(&pyroscopeLike{})
	defer srv.Close()
	for _, tt := range []struct {
		name, url string
		want      string // in the error
		atNew     bool   // NewClient refuses it
	}{
		{"path 404", srv.URL + "/api", "has no Pyroscope Push API", false},
		{"path 404 with slash", srv.URL + "/pyroscope/", "has no Pyroscope Push API", false},
		{"scheme", "ftp://127.0.0.1:4040", "scheme must be http or https", true},
		{"no scheme", "127.0.0.1:4040", "scheme must be http or https", true},
		{"unparseable", "http://[::1", "does not parse", true},
		{"no host", "http:///push", "has no host", true},
		{"query", srv.URL + "/?x=1", "without a query", true},
		{"unresolvable host", "http://pyprof-no-such-host.invalid:4040", "host pyprof-no-such-host.invalid not found", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(Config{URL: tt.url, Timeout: 5 * time.Second})
			if tt.atNew {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("NewClient: %v, want an error saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = c.Probe(context.Background())
			if err == nil || FateOf(err) != Fatal || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Probe: %v (fate %v), want a fatal error saying %q", err, FateOf(err), tt.want)
			}
		})
	}
}

// TestDownAtStart: a server that is not up yet is retried, not fatal, and
// gets the interval once it is.
func TestDownAtStart(t *testing.T) {
	port := freePort(t)
	c, err := NewClient(Config{URL: "http://127.0.0.1:" + port})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Probe(context.Background())
	if err == nil || FateOf(err) != Retry || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("probe of a server that is down: %v (fate %v), want connection refused, to retry", err, FateOf(err))
	}
	var l logs
	p := Start(c, Options{Queue: 5, Log: l.log, Backoff: func(int) time.Duration { return 20 * time.Millisecond }})
	p.Add(interval(0))
	time.Sleep(100 * time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", port, err)
	}
	var s pyroscopeLike
	srv := &http.Server{Handler: &s}
	go srv.Serve(ln)
	defer srv.Close()
	p.Add(interval(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := p.Close(ctx)
	if st.Pushed != 2 || st.Retries == 0 || p.Err() != nil {
		t.Errorf("stats %+v (err %v), want both intervals pushed after retries; log %q", st, p.Err(), l.all())
	}
}

// TestFatalWhileRunning: credentials refused during the run stop the
// Pusher with the error.
func TestFatalWhileRunning(t *testing.T) {
	srv := httptest.NewServer(&pyroscopeLike{creds: creds{token: "right"}})
	defer srv.Close()
	c, _ := NewClient(Config{URL: srv.URL, Token: "wrong"})
	p := Start(c, Options{Queue: 5})
	p.Add(interval(0))
	select {
	case <-p.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("no failure after a 401")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Err() = %v, want the 401", err)
	}
	st := p.Close(context.Background())
	if st.Unsent != 1 {
		t.Errorf("stats %+v, want the interval counted unsent", st)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(&pyroscopeLike{})
	// The handshakes refused on purpose are not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o600)
	for _, tt := range []struct {
		name, ca string
		wantErr  string // "" for success
	}{
		{"trusted CA file", ca, ""},
		{"system roots", "", "certificate"},
		{"no certificate in file", empty, "no PEM certificate"},
		{"missing file", filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(Config{URL: srv.URL, CAFile: tt.ca})
			if err == nil {
				err = c.Probe(context.Background())
				if err == nil {
					err = c.Push(context.Background(), []byte(`{"series":[{}]}`))
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("%v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("%v, want an error saying %q", err, tt.wantErr)
			case tt.name == "system roots" && FateOf(err) != Fatal:
				t.Errorf("untrusted certificate: fate %v, want fatal", FateOf(err))
			}
		})
	}
}

// TestEncode: one series per process, with its labels, and a pprof of
// that process's stacks only, at the interval's time.
func TestEncode(t *testing.T) {
	b := profile.NewBuilder()
	hot := profile.Frame{Name: "hot", File: "app.py", Line: 3, FirstLine: 1}
	mod := profile.Frame{Name: "<module>", File: "app.py", Line: 9}
	cold := profile.Frame{Name: "cold", File: "lib.py", Line: 5}
	b.Add([]profile.Frame{mod, hot}, 7, 101, 0, "")
	b.Add([]profile.Frame{mod, cold}, 2, 101, 0, "")
	b.Add([]profile.Frame{mod, cold}, 5, 202, 0, "")
	m := b.Meta()
	m.Start, m.Duration, m.Interval = t0, 10*time.Second, 10*time.Millisecond
	e := Encoder{App: "shop", Tags: []Label{{"env", "ci"}}, Command: func(pid int) string { return fmt.Sprint("cmd", pid) }}
	iv, err := e.Encode(b.Profile())
	if err != nil {
		t.Fatal(err)
	}
	if iv.Processes != 2 || iv.Samples != 14 || !iv.Start.Equal(t0) || !iv.End.Equal(t0.Add(10*time.Second)) {
		t.Errorf("interval %+v", iv)
	}
	var req struct {
		Series []struct {
			Labels  []Label
			Samples []struct {
				ID         string
				RawProfile string
			}
		}
	}
	if err := json.Unmarshal(iv.Body, &req); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"101": 9, "202": 5}
	for _, s := range req.Series {
		labels := map[string]string{}
		for _, l := range s.Labels {
			labels[l.Name] = l.Value
		}
		pid := labels["pid"]
		if labels["service_name"] != "shop" || labels["env"] != "ci" || labels["command"] != "cmd"+pid || labels["__name__"] != "process_cpu" {
			t.Errorf("labels %v", labels)
		}
		raw, _ := base64.StdEncoding.DecodeString(s.Samples[0].RawProfile)
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		p, err := pprof.Parse(zr)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, smp := range p.Sample {
			n += smp.Value[0]
		}
		if n != want[pid] || p.TimeNanos != t0.UnixNano() || p.DurationNanos != int64(10*time.Second) {
			t.Errorf("pid %s: %d samples at %d for %d ns, want %d at %d for 10 s", pid, n, p.TimeNanos, p.DurationNanos, want[pid], t0.UnixNano())
		}
		if pid == "202" && len(p.Function) != 2 {
			t.Errorf("pid 202's profile has %d functions, want its 2 only", len(p.Function))
		}
		if len(s.Samples[0].ID) != 36 {
			t.Errorf("ID %q is not a UUID", s.Samples[0].ID)
		}
	}
	if len(req.Series) != 2 {
		t.Errorf("%d series, want 2", len(req.Series))
	}
	// Nothing sampled: nothing to send.
	if iv, err := e.Encode(profile.NewBuilder().Profile()); err != nil || iv.Body != nil {
		t.Errorf("empty profile: %v, %q", err, iv.Body)
	}
}

func TestNextBoundary(t *testing.T) {
	for _, tt := range []struct {
		now  time.Time
		want time.Time
	}{
		{t0.Add(3 * time.Second), t0.Add(10 * time.Second)},
		{t0, t0.Add(10 * time.Second)},
		{t0.Add(9999 * time.Millisecond), t0.Add(10 * time.Second)},
	} {
		if got := NextBoundary(tt.now, 10*time.Second); !got.Equal(tt.want) {
			t.Errorf("NextBoundary(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}
