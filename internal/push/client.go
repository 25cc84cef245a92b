// Package push uploads pyprof's profiles to Grafana Pyroscope while a
// recording runs: the sampler's samples are cut into intervals
// (Recorder), each interval becomes one pprof profile per process, sent
// in one request through Pyroscope's Push API (Client), and a bounded
// queue retries the requests that fail (Pusher).
//
// The connect Push API (POST /push.v1.PusherService/Push, JSON) is used
// rather than the legacy /ingest: one request carries every process of an
// interval, so an interval is pushed or retried as a whole; labels travel
// as name/value pairs, so a tag or a command name needs no escaping into
// /ingest's name=APP{k=v} syntax; and every answer is a connect error
// with a code that says whether trying again can help.
package push

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// pushPath is the Push API's method, after the server's base URL.
const pushPath = "/push.v1.PusherService/Push"

// Config says where and how to connect.
type Config struct {
	// URL is the server's base URL, http or https, possibly with a path
	// prefix (a gateway's) and user:password.
	URL string
	// User and Password, when User is set, replace the URL's.
	User, Password string
	// Token is sent as a bearer token.
	Token string
	// Tenant is sent as X-Scope-OrgID, for multi-tenant servers.
	Tenant string
	// CAFile, when set, holds the only certificates trusted for HTTPS;
	// otherwise the system's roots are.
	CAFile string
	// Timeout bounds each request, from connecting to reading the answer.
	Timeout time.Duration
}

// Client sends requests to one server. Its messages and errors never
// hold the credentials: the URL they name has no user information.
type Client struct {
	base     *url.URL // without user information
	endpoint string   // base + pushPath
	user     *url.Userinfo
	token    string
	tenant   string
	http     *http.Client
}

// NewClient checks the configuration: the URL must parse and be http or
// https with a host, and the CA file must hold a certificate.
func NewClient(c Config) (*Client, error) {
	if !strings.Contains(c.URL, "://") {
		return nil, fmt.Errorf("push URL %s: the scheme must be http or https, as in http://pyroscope:4040", Redact(c.URL))
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Parse's error quotes the whole URL, credentials and all.
		return nil, fmt.Errorf("push URL %q does not parse", Redact(c.URL))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("push URL %s: the scheme must be http or https", Redact(c.URL))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("push URL %s has no host", Redact(c.URL))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("push URL %s: give the server's base URL, without a query", Redact(c.URL))
	}
	cl := &Client{user: u.User, token: c.Token, tenant: c.Tenant}
	if c.User != "" {
		cl.user = url.UserPassword(c.User, c.Password)
	}
	u.User = nil
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	cl.base = u
	cl.endpoint = u.String() + pushPath

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.MaxIdleConnsPerHost = 1
	tr.IdleConnTimeout = 90 * time.Second
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--push-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--push-ca: no PEM certificate in %s", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cl.http = &http.Client{
		Transport: tr, Timeout: timeout,
		// A redirect would resend the credentials elsewhere; the
		// answer is reported instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return cl, nil
}

// URL is the server's base URL as messages show it.
func (c *Client) URL() string { return c.base.String() }

// Close releases the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Redact removes the user information from a URL for messages; a string
// that does not parse is cut at its last '@' instead.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.User != nil {
			u.User = nil
		}
		return u.String()
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
		return "…" + s[i:]
	}
	return s
}

// Error is an answer other than success from the server.
type Error struct {
	Status int
	// Code and Message are the connect error's, when the body is one,
	// or else Message is the start of the body.
	Code, Message string
	url           string
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	if msg != "" {
		msg = " (" + msg + ")"
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("%s refused the credentials: %d %s%s; check --push-user/--push-password, --push-token or --push-tenant",
			e.url, e.Status, http.StatusText(e.Status), msg)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Sprintf("%s has no Pyroscope Push API (%s answered %d %s); give the server's base URL, such as http://pyroscope:4040",
			e.url, pushPath, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s answered %d %s%s", e.url, e.Status, http.StatusText(e.Status), msg)
}

// Fate is what to do with a request after an error.
type Fate int

const (
	// Retry: the server or the network may recover.
	Retry Fate = iota
	// Reject: the server refused this request; sending it again would
	// not help, but the next may pass.
	Reject
	// Fatal: no request can pass (wrong URL, refused credentials).
	Fatal
)

// hostError is a host name that does not resolve: at the start, a typo
// in the URL; later, a DNS outage that may pass.
type hostError struct{ msg string }

func (e *hostError) Error() string { return e.msg }

// FateOf classifies an error from Push or Probe.
func FateOf(err error) Fate {
	var he *hostError
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var hn x509.HostnameError
	if errors.As(err, &he) || errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &hn) {
		// A certificate that is not trusted now will not be later.
		return Fatal
	}
	var e *Error
	if !errors.As(err, &e) {
		return Retry
	}
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden ||
		e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed:
		return Fatal
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500:
		return Retry
	case e.Status >= 300 && e.Status < 400:
		// Redirects are not followed (they would carry the
		// credentials): the URL is wrong for every request.
		return Fatal
	}
	return Reject
}

// Push sends one Push API request body.
func (c *Client) Push(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push to %s: %w", c.URL(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pyprof")
	if c.user != nil {
		pw, _ := c.user.Password()
		req.SetBasicAuth(c.user.Username(), pw)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("push to %s: %w", c.URL(), netCause(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	// Drained, so that the connection is reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	e := &Error{Status: resp.StatusCode, url: c.URL()}
	var ce struct{ Code, Message string }
	if json.Unmarshal(data, &ce) == nil && ce.Code != "" {
		e.Code, e.Message = ce.Code, ce.Message
	} else {
		e.Message = strings.TrimSpace(string(data))
	}
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	return e
}

// netCause drops the *url.Error around a transport error: it would
// repeat the URL, and the message names the server already.
func netCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// Probe checks, before sampling starts, that the URL leads to a Pyroscope
// that takes the credentials, by pushing nothing: Pyroscope answers an
// empty push with 400 "no profiles received" once it has passed the
// authentication of the server or of a gateway in front of it, which
// answer 401 or 403 before that, and a wrong path answers 404 (GET /ready
// would check neither). A host that does not resolve is an error;
// anything else that fails (a server that is down, a 503 while it
// starts) has Retry as its FateOf: sampling may start, and pushing will
// retry.
func (c *Client) Probe(ctx context.Context) error {
	// Through a proxy, the proxy resolves the name, and may know names
	// this host does not.
	proxy, _ := http.ProxyFromEnvironment(&http.Request{URL: c.base})
	var dnsErr *net.DNSError
	if _, err := net.DefaultResolver.LookupHost(ctx, c.base.Hostname()); proxy == nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &hostError{fmt.Sprintf("push URL %s: host %s not found", c.URL(), c.base.Hostname())}
	}
	err := c.Push(ctx, []byte(`{"series":[]}`))
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest {
		return nil
	}
	return err
}
