package push

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Interval is one interval's request, ready to send.
type Interval struct {
	Start, End time.Time
	Body       []byte
	Processes  int
	Samples    int64
}

// Sender sends one request body; Client is one.
type Sender interface {
	Push(ctx context.Context, body []byte) error
	URL() string
}

// Options tune a Pusher.
type Options struct {
	// Queue is how many intervals wait at most, the one being sent
	// included; when a new one comes to a full queue, the oldest is
	// dropped. At least 1.
	Queue int
	// Log receives one line for each interval's fate and each retry.
	Log func(msg string)
	// Backoff gives the wait before the attempt-th retry; nil is
	// DefaultBackoff.
	Backoff func(attempt int) time.Duration
}

// Backoff bounds: the first retry comes after 0.5–1 s, each later one
// after twice as long, up to 15–30 s.
const (
	backoffBase = time.Second
	backoffMax  = 30 * time.Second
)

// DefaultBackoff is exponential backoff with jitter: the wait before the
// attempt-th retry (from 1) is drawn uniformly between half and all of
// min(backoffBase·2^(attempt-1), backoffMax), so that agents the same
// outage hit do not come back in step.
func DefaultBackoff(attempt int) time.Duration {
	return Backoff(attempt, rand.Float64())
}

// Backoff is DefaultBackoff with the random draw, in [0, 1), given.
func Backoff(attempt int, r float64) time.Duration {
	d := backoffMax
	if attempt >= 1 && attempt <= 16 {
		d = min(backoffBase<<(attempt-1), backoffMax)
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// Stats count intervals by fate.
type Stats struct {
	Pushed   int   // sent and accepted
	Samples  int64 // in the intervals pushed
	Retries  int   // attempts that failed and were retried
	Dropped  int   // dropped from a full queue
	Rejected int   // refused by the server for themselves (a 400)
	Unsent   int   // still queued when Close gave up
}

// Pusher sends intervals in order from a bounded queue, one at a time,
// retrying each with backoff until it is sent, the server refuses it for
// good, it is pushed out of the queue by newer ones, or Close gives up.
type Pusher struct {
	s Sender
	o Options

	mu      sync.Mutex
	queue   []Interval // oldest first
	dropped bool       // the head was dropped while it was being sent
	closing bool
	stats   Stats
	fatal   error

	wake     chan struct{} // a new interval, or closing
	done     chan struct{} // the sending goroutine ended
	failed   chan struct{} // closed on a fatal error
	ctx      context.Context
	cancel   context.CancelFunc
	hurry    chan struct{} // closed by Close: no more waiting between retries
	hurryOne sync.Once
}

// Start starts sending in the background.
func Start(s Sender, o Options) *Pusher {
	if o.Queue < 1 {
		o.Queue = 1
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Log == nil {
		o.Log = func(string) {}
	}
	p := &Pusher{s: s, o: o, wake: make(chan struct{}, 1), done: make(chan struct{}), failed: make(chan struct{}), hurry: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run()
	return p
}

// Add queues an interval, dropping the oldest if the queue is full.
func (p *Pusher) Add(iv Interval) {
	p.mu.Lock()
	if p.closing || p.fatal != nil {
		p.mu.Unlock()
		return
	}
	if len(p.queue) >= p.o.Queue {
		old := p.queue[0]
		p.queue[0] = Interval{}
		p.queue = p.queue[1:]
		p.dropped = true
		p.stats.Dropped++
		n := p.stats.Dropped
		p.mu.Unlock()
		p.o.Log(fmt.Sprintf("dropped %s: the queue of %d intervals is full (%d dropped so far)", span(old), p.o.Queue, n))
		p.mu.Lock()
	}
	p.queue = append(p.queue, iv)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Failed is closed when an error makes every push fail (Err says which).
func (p *Pusher) Failed() <-chan struct{} { return p.failed }

// Err is the error that made pushing stop, if one did.
func (p *Pusher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

// Stats returns the counts so far.
func (p *Pusher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close sends what is queued until the queue is empty or ctx ends (an
// interval waiting to be retried is tried once more at once), then gives
// up on the rest, each said on Log, and returns the counts.
func (p *Pusher) Close(ctx context.Context) Stats {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.hurryOne.Do(func() { close(p.hurry) })
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
	}
	p.cancel()
	p.mu.Lock()
	left := p.queue
	p.queue = nil
	p.stats.Unsent += len(left)
	st := p.stats
	fatal := p.fatal
	p.mu.Unlock()
	for _, iv := range left {
		why := "not pushed before the deadline"
		if fatal != nil {
			why = "not pushed"
		}
		p.o.Log(fmt.Sprintf("dropped %s: %s", span(iv), why))
	}
	return st
}

// run sends the queue's head until Close.
func (p *Pusher) run() {
	defer close(p.done)
	attempt := 0
	hurry := p.hurry
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			closing := p.closing
			p.mu.Unlock()
			if closing {
				return
			}
			select {
			case <-p.wake:
			case <-p.ctx.Done():
				return
			}
			continue
		}
		iv := p.queue[0]
		p.dropped = false
		p.mu.Unlock()

		t0 := time.Now()
		err := p.s.Push(p.ctx, iv.Body)
		took := time.Since(t0)
		if p.ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		// The head may have been dropped for a newer interval while it
		// was being sent; its fate was said then.
		current := !p.dropped
		if current && (err == nil || FateOf(err) == Reject) {
			p.queue[0] = Interval{}
			p.queue = p.queue[1:]
		}
		p.mu.Unlock()
		if !current {
			attempt = 0
			continue
		}
		switch {
		case err == nil:
			p.mu.Lock()
			p.stats.Pushed++
			p.stats.Samples += iv.Samples
			p.mu.Unlock()
			p.o.Log(fmt.Sprintf("pushed %s: %d samples of %s in %d ms", span(iv), iv.Samples, processes(iv.Processes), took.Milliseconds()))
			attempt = 0
		case FateOf(err) == Reject:
			p.mu.Lock()
			p.stats.Rejected++
			p.mu.Unlock()
			p.o.Log(fmt.Sprintf("dropped %s: %v", span(iv), err))
			attempt = 0
		case FateOf(err) == Fatal:
			p.mu.Lock()
			p.fatal = err
			p.mu.Unlock()
			close(p.failed)
			return
		default:
			attempt++
			wait := p.o.Backoff(attempt)
			p.mu.Lock()
			p.stats.Retries++
			queued := len(p.queue)
			p.mu.Unlock()
			p.o.Log(fmt.Sprintf("retrying %s in %.1f s (attempt %d failed, %d queued): %v", span(iv), wait.Seconds(), attempt, queued, err))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-hurry:
				// Closing: one more attempt now, rather than at the
				// end of a long wait; the schedule goes on after it.
				t.Stop()
				hurry = nil
			case <-p.ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// span names an interval in messages by its wall-clock times.
func span(iv Interval) string {
	return fmt.Sprintf("%s–%s", iv.Start.Format("15:04:05"), iv.End.Format("15:04:05"))
}

func processes(n int) string {
	if n == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", n)
}
