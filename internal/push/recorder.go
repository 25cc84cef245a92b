package push

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pyprof/pyprof/internal/aggregate"
	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/sampler"
)

// Recorder aggregates samples into the current interval's profile; Cut
// ends the interval and starts the next. Each interval has its own
// profile.Builder and aggregate.Aggregator, so nothing they intern (frames,
// stacks, caches) outlives the interval: memory follows what one interval
// holds, however long the run. Add and Cut may be called from different
// goroutines; a sample is in exactly one interval.
type Recorder struct {
	opts     aggregate.Options
	interval time.Duration // one sample's weight: 1/rate
	idle     bool

	mu    sync.Mutex
	b     *profile.Builder
	agg   *aggregate.Aggregator
	start time.Time
}

// NewRecorder starts the first interval at start; rate is the sampling
// rate, idle says idle threads are sampled (the samples are wall time).
func NewRecorder(start time.Time, rate float64, idle bool) *Recorder {
	r := &Recorder{
		// Per-process series: no process frame, and no thread names,
		// which Pyroscope would turn into a series per thread.
		opts:     aggregate.Options{},
		interval: time.Duration(float64(time.Second) / rate),
		idle:     idle,
	}
	r.reset(start)
	return r
}

func (r *Recorder) reset(start time.Time) {
	r.b = profile.NewBuilder()
	r.agg = aggregate.New(r.b, r.opts)
	r.start = start
}

// Add adds a sample to the current interval.
func (r *Recorder) Add(smp sampler.Sample) {
	r.mu.Lock()
	r.agg.Add(smp)
	r.mu.Unlock()
}

// Forget drops the caches' hold on an exited process.
func (r *Recorder) Forget(pid int) {
	r.mu.Lock()
	r.agg.Forget(pid)
	r.mu.Unlock()
}

// Cut ends the current interval at end and returns its profile (with
// Start, Duration, Interval and Idle set), and starts the next at end.
func (r *Recorder) Cut(end time.Time) *profile.Profile {
	r.mu.Lock()
	b, start := r.b, r.start
	r.reset(end)
	r.mu.Unlock()
	m := b.Meta()
	m.Start, m.Duration = start, end.Sub(start)
	m.Interval, m.Idle = r.interval, r.idle
	return b.Profile()
}

// NextBoundary is when an interval that runs at now ends: intervals end
// at multiples of every since the Unix epoch, so that those of every
// agent, and the grid of a query with that step, line up.
func NextBoundary(now time.Time, every time.Duration) time.Time {
	if every <= 0 {
		return now
	}
	ns := now.UnixNano()
	return time.Unix(0, ns-ns%int64(every)+int64(every))
}

// Label is a series label.
type Label struct{ Name, Value string }

// Encoder makes the Push API request of an interval.
type Encoder struct {
	// App is the service_name.
	App string
	// Tags are added to every series.
	Tags []Label
	// Command names a process for its series' command label; "" leaves
	// the label out.
	Command func(pid int) string
}

// Encode returns the request for p, one series per process labelled with
// its pid, or nil when p has no samples. Every profile gets a random ID,
// kept when the request is sent again, so that a retry of a request that
// arrived is recognised.
func (e *Encoder) Encode(p *profile.Profile) (iv Interval, err error) {
	iv = Interval{Start: p.Start, End: p.Start.Add(p.Duration)}
	byPid := map[int][]int{}
	var pids []int
	for i, s := range p.Stacks {
		if byPid[s.Pid] == nil {
			pids = append(pids, s.Pid)
		}
		byPid[s.Pid] = append(byPid[s.Pid], i)
		iv.Samples += s.Count
	}
	if len(pids) == 0 {
		return iv, nil
	}
	slices.Sort(pids)
	name := "process_cpu"
	if p.Idle {
		name = "wall"
	}
	type jsonLabel struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type jsonSample struct {
		ID         string `json:"ID"`
		RawProfile []byte `json:"rawProfile"` // base64, as protobuf's JSON has bytes
	}
	type jsonSeries struct {
		Labels  []jsonLabel  `json:"labels"`
		Samples []jsonSample `json:"samples"`
	}
	var req struct {
		Series []jsonSeries `json:"series"`
	}
	var buf bytes.Buffer
	for _, pid := range pids {
		buf.Reset()
		if err := onePid(p, byPid[pid]).writePprof(&buf); err != nil {
			return Interval{}, fmt.Errorf("encode process %d: %w", pid, err)
		}
		labels := []jsonLabel{{"__name__", name}, {"service_name", e.App}}
		for _, t := range e.Tags {
			labels = append(labels, jsonLabel(t))
		}
		labels = append(labels, jsonLabel{"pid", strconv.Itoa(pid)})
		if e.Command != nil {
			if c := e.Command(pid); c != "" {
				labels = append(labels, jsonLabel{"command", c})
			}
		}
		req.Series = append(req.Series, jsonSeries{
			Labels:  labels,
			Samples: []jsonSample{{ID: uuid(), RawProfile: slices.Clone(buf.Bytes())}},
		})
	}
	iv.Processes = len(pids)
	iv.Body, err = json.Marshal(&req)
	return iv, err
}

// pidProfile is one process's part of an interval.
type pidProfile struct{ *profile.Profile }

// onePid returns the profile of the given stacks of p, with only the
// frames they use.
func onePid(p *profile.Profile, stacks []int) pidProfile {
	q := *p
	q.Stacks = make([]profile.Stack, len(stacks))
	q.Frames = nil
	q.Timelines = nil
	index := map[int]int{}
	for i, si := range stacks {
		s := p.Stacks[si]
		frames := make([]int, len(s.Frames))
		for j, id := range s.Frames {
			k, ok := index[id]
			if !ok {
				k = len(q.Frames)
				index[id] = k
				q.Frames = append(q.Frames, p.Frames[id])
			}
			frames[j] = k
		}
		s.Frames = frames
		q.Stacks[i] = s
	}
	q.Pids = []int{p.Stacks[stacks[0]].Pid}
	return pidProfile{&q}
}

// writePprof writes the gzipped pprof at the fastest compression: the
// profile is sent once and dropped, and most of its bytes compress well
// either way.
func (p pidProfile) writePprof(w *bytes.Buffer) error {
	pp, err := p.ToPprof()
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := pp.WriteUncompressed(zw); err != nil {
		return err
	}
	return zw.Close()
}

// uuid returns a random (version 4) UUID.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
