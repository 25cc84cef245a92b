// Package pyroscopetest runs a real Grafana Pyroscope server on loopback
// for pyprof's tests and benchmarks, and asks it, through its connect
// query API, what arrived. The server binary is built from the Go module
// proxy by .ci/pyroscope-build and cached; Binary finds it.
package pyroscopetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyprof/pyprof/internal/testenv"
)

// Env names the server binary, overriding DefaultBinary.
const Env = "PYPROF_PYROSCOPE"

// DefaultBinary is where .ci/pyroscope-build caches the server.
const DefaultBinary = "/var/cache/pyprof/pyroscope/pyroscope-v1.21.0"

// Binary returns the server binary's path, or an error saying how to get
// one.
func Binary() (string, error) {
	bin := os.Getenv(Env)
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no Pyroscope server at %s (build it with `bash .ci/pyroscope-build`, or set %s): %w", bin, Env, err)
	}
	return bin, nil
}

// Server is a Pyroscope on loopback with its storage in one directory; it
// can be stopped and started again on the same storage and ports.
type Server struct {
	URL   string
	bin   string
	dir   string
	ports [3]int // HTTP, gRPC, memberlist
	cmd   *exec.Cmd
	log   *os.File
}

// Start starts a server with its storage and log under dir and waits until
// it is ready.
func Start(bin, dir string) (*Server, error) {
	s := &Server{bin: bin, dir: dir}
	for i := range s.ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		s.ports[i] = p
	}
	s.URL = "http://127.0.0.1:" + strconv.Itoa(s.ports[0])
	if err := s.Restart(); err != nil {
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart starts the (stopped) server again and waits until it is ready.
func (s *Server) Restart() error {
	d := s.dir
	http, grpc, gossip := strconv.Itoa(s.ports[0]), strconv.Itoa(s.ports[1]), strconv.Itoa(s.ports[2])
	// The flags of /work/shared/pyroscope/start.sh: everything on
	// loopback, all state under d, ready at once.
	s.cmd = exec.Command(s.bin,
		"-target=all",
		"-server.http-listen-address=127.0.0.1", "-server.http-listen-port="+http,
		"-server.grpc-listen-address=127.0.0.1", "-server.grpc-listen-port="+grpc,
		"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port="+gossip,
		"-memberlist.advertise-addr=127.0.0.1", "-memberlist.join=127.0.0.1:"+gossip,
		"-ingester.lifecycler.addr=127.0.0.1",
		"-distributor.ring.instance-addr=127.0.0.1", "-compactor.ring.instance-addr=127.0.0.1",
		"-overrides-exporter.ring.instance-addr=127.0.0.1", "-query-frontend.instance-addr=127.0.0.1",
		"-query-scheduler.ring.instance-addr=127.0.0.1", "-store-gateway.sharding-ring.instance-addr=127.0.0.1",
		"-storage.backend=filesystem", "-storage.filesystem.dir="+filepath.Join(d, "shared"),
		"-pyroscopedb.data-path="+filepath.Join(d, "data"), "-compactor.data-dir="+filepath.Join(d, "compactor"),
		"-blocks-storage.bucket-store.sync-dir="+filepath.Join(d, "sync"),
		"-ingester.min-ready-duration=0s",
		"-self-profiling.disable-push=true", "-usage-stats.enabled=false",
	)
	log, err := os.OpenFile(filepath.Join(d, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.log = log
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start pyroscope: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http2Get(s.URL + "/ready")
		if err == nil && resp == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("pyroscope not ready after 60 s: %v; log:\n%s", err, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func http2Get(url string) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Stop stops the server gracefully (SIGTERM, which flushes its head to
// disk), killing it after 30 s, and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	testenv.Stop(s.cmd, 30*time.Second)
	s.log.Close()
	s.cmd = nil
}

// Pid is the running server's pid, or 0.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Log returns the end of the server's log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// Query posts a connect query (method is e.g. "LabelValues") and decodes
// the answer into out.
func (s *Server) Query(method string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(s.URL+"/querier.v1.QuerierService/"+method, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s: %s", method, resp.Status, data)
	}
	return json.Unmarshal(data, out)
}

// Range is a query's time range, in milliseconds since the epoch as the
// API takes it.
type Range struct{ Start, End int64 }

// RangeOf returns the range from start to end.
func RangeOf(start, end time.Time) Range { return Range{start.UnixMilli(), end.UnixMilli()} }

// Selector matches the series of a service.
func Selector(service string) string { return fmt.Sprintf(`{service_name=%q}`, service) }

// LabelValues lists the values of label among the service's series.
func (s *Server) LabelValues(service, label string, r Range) ([]string, error) {
	var out struct{ Names []string }
	err := s.Query("LabelValues", map[string]any{"name": label, "matchers": []string{Selector(service)}, "start": r.Start, "end": r.End}, &out)
	return out.Names, err
}

// Point is one value of a series at a time (ms).
type Point struct {
	Value     float64
	Timestamp int64 `json:",string"`
}

// Series is a series of SelectSeries: its labels and points.
type Series struct {
	Labels map[string]string
	Points []Point
}

// SelectSeries returns the service's series of the profile type, grouped
// by the labels, on a grid of step seconds.
func (s *Server) SelectSeries(service, profileType string, groupBy []string, step float64, r Range) ([]Series, error) {
	var out struct {
		Series []struct {
			Labels []struct{ Name, Value string }
			Points []Point
		}
	}
	err := s.Query("SelectSeries", map[string]any{
		"profileTypeID": profileType, "labelSelector": Selector(service),
		"start": r.Start, "end": r.End, "step": step, "groupBy": groupBy,
	}, &out)
	var ss []Series
	for _, x := range out.Series {
		l := map[string]string{}
		for _, kv := range x.Labels {
			l[kv.Name] = kv.Value
		}
		ss = append(ss, Series{Labels: l, Points: x.Points})
	}
	return ss, err
}

// SelfTimes merges the service's profiles of the profile type, with the
// extra label matchers (such as `pid="12"`), and returns each function's
// self value and the total, from the flame graph.
func (s *Server) SelfTimes(service, profileType, matchers string, r Range) (map[string]int64, int64, error) {
	sel := Selector(service)
	if matchers != "" {
		sel = strings.TrimSuffix(sel, "}") + "," + matchers + "}"
	}
	var out struct {
		Flamegraph struct {
			Names  []string
			Levels []struct {
				Values []string // int64s, as protobuf's JSON has them
			}
			Total int64 `json:",string"`
		}
	}
	if err := s.Query("SelectMergeStacktraces", map[string]any{"profileTypeID": profileType, "labelSelector": sel, "start": r.Start, "end": r.End}, &out); err != nil {
		return nil, 0, err
	}
	self := map[string]int64{}
	fg := out.Flamegraph
	for _, l := range fg.Levels {
		// Four numbers a node: offset, total, self, name index.
		for i := 0; i+3 < len(l.Values); i += 4 {
			v, _ := strconv.ParseInt(l.Values[i+2], 10, 64)
			if n, err := strconv.Atoi(l.Values[i+3]); err == nil && n >= 0 && n < len(fg.Names) {
				self[fg.Names[n]] += v
			}
		}
	}
	return self, fg.Total, nil
}

// Top returns the function with the most self time in self.
func Top(self map[string]int64) string {
	best, n := "", int64(-1)
	for k, v := range self {
		if v > n || v == n && k < best {
			best, n = k, v
		}
	}
	return best
}
