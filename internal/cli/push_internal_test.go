package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestPushFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int    // 0: validated
		wantErr  string // in stderr
		check    func(t *testing.T, o *recordOptions)
	}{
		{name: "app without push", args: []string{"--app", "x"}, wantCode: exitUsage, wantErr: "--app needs --push"},
		{name: "tag without push", args: []string{"--tag", "a=b"}, wantCode: exitUsage, wantErr: "--tag needs --push"},
		{name: "token without push", args: []string{"--push-token", "t"}, wantCode: exitUsage, wantErr: "--push-token needs --push"},
		{name: "tag without =", args: []string{"--push", "http://h:1", "--tag", "env"}, wantCode: exitUsage, wantErr: `--tag "env": want KEY=VALUE`},
		{name: "tag bad key", args: []string{"--push", "http://h:1", "--tag", "my-env=x"}, wantCode: exitUsage, wantErr: "want KEY=VALUE"},
		{name: "tag empty value", args: []string{"--push", "http://h:1", "--tag", "env="}, wantCode: exitUsage, wantErr: "want KEY=VALUE"},
		{name: "tag reserved", args: []string{"--push", "http://h:1", "--tag", "service_name=x"}, wantCode: exitUsage, wantErr: "use --app"},
		{name: "tag pid", args: []string{"--push", "http://h:1", "--tag", "pid=1"}, wantCode: exitUsage, wantErr: "pyprof sets that label itself"},
		{name: "queue 0", args: []string{"--push", "http://h:1", "--push-queue", "0"}, wantCode: exitUsage, wantErr: "must be a whole number from 1 to 100000"},
		{name: "interval too short", args: []string{"--push", "http://h:1", "--push-interval", "0.5"}, wantCode: exitUsage, wantErr: "from 1 to 3600"},
		{name: "password without user", args: []string{"--push", "http://h:1", "--push-password", "p"}, wantCode: exitUsage, wantErr: "--push-password needs --push-user"},
		{name: "push only", args: []string{"--push", "http://h:1", "--tag", "env=ci", "--tag", "team=queue", "--app", "shop"}, check: func(t *testing.T, o *recordOptions) {
			if !o.pushOnly || len(o.pushTags) != 2 || o.pushTags[1].Name != "team" || o.pushTags[1].Value != "queue" || o.push.app != "shop" || o.push.interval != 10 || o.push.queue != 30 || o.push.timeout != 10 {
				t.Errorf("options %+v", o)
			}
		}},
		{name: "push and -o", args: []string{"--push", "http://h:1", "-o", filepath.Join(dir, "p.svg")}, check: func(t *testing.T, o *recordOptions) {
			if o.pushOnly {
				t.Error("-o given, but no file would be written")
			}
		}},
		{name: "push and -f", args: []string{"--push", "http://h:1", "-f", "pprof"}, check: func(t *testing.T, o *recordOptions) {
			if o.pushOnly {
				t.Error("-f given, but no file would be written")
			}
		}},
		{name: "credentials from the environment", args: []string{"--push", "http://h:1"},
			env: map[string]string{"PYPROF_PUSH_USER": "u", "PYPROF_PUSH_PASSWORD": "p", "PYPROF_PUSH_TOKEN": "tok"},
			check: func(t *testing.T, o *recordOptions) {
				if o.push.user != "u" || o.push.password != "p" || o.push.token != "tok" {
					t.Errorf("credentials %q %q %q", o.push.user, o.push.password, o.push.token)
				}
			}},
		{name: "flags over the environment", args: []string{"--push", "http://h:1", "--push-user", "flag"},
			env: map[string]string{"PYPROF_PUSH_USER": "env"},
			check: func(t *testing.T, o *recordOptions) {
				if o.push.user != "flag" {
					t.Errorf("user %q, want the flag's", o.push.user)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"PYPROF_PUSH_USER", "PYPROF_PUSH_PASSWORD", "PYPROF_PUSH_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			code, stderr, opts := runValidated(t, append([]string{"record", "-p", "4194304"}, tt.args...)...)
			if tt.wantCode != 0 {
				if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
					t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
				}
				return
			}
			o, ok := opts.(*recordOptions)
			if !ok {
				t.Fatalf("not validated: exit %d: %s", code, stderr)
			}
			tt.check(t, o)
		})
	}
}

// TestPushRefusedAtOnce: refused credentials and a wrong path end record
// before it looks for its target, with the reason and without the
// secret.
func TestPushRefusedAtOnce(t *testing.T) {
	const secret = "hunter2-secret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/push.v1.PusherService/Push" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":"unauthenticated","message":"invalid token"}`)
	}))
	defer srv.Close()
	withUser := strings.Replace(srv.URL, "://", "://alice:"+secret+"@", 1)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"URL userinfo", []string{"--push", withUser}, "refused the credentials: 401 Unauthorized (unauthenticated: invalid token)"},
		{"token", []string{"--push", srv.URL, "--push-token", secret}, "refused the credentials"},
		{"password flag", []string{"--push", srv.URL, "--push-user", "alice", "--push-password", secret}, "refused the credentials"},
		{"wrong path", []string{"--push", withUser + "/pyroscope"}, "has no Pyroscope Push API"},
		{"unresolvable host", []string{"--push", "http://alice:" + secret + "@pyprof-no-such-host.invalid:4040"}, "host pyprof-no-such-host.invalid not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			code := Run(append([]string{"record", "-p", "4194304"}, tt.args...), io.Discard, &out)
			if code != exitError || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d: %q, want 1 and %q", code, out.String(), tt.want)
			}
			if strings.Contains(out.String(), secret) {
				t.Errorf("the secret was printed: %q", out.String())
			}
			// Refused before the target was looked for.
			if strings.Contains(out.String(), "4194304") {
				t.Errorf("record went on to its target: %q", out.String())
			}
		})
	}
}
