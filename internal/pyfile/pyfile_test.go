package pyfile

import "testing"

func TestShort(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/usr/lib/python3/dist-packages/gunicorn/workers/sync.py", "gunicorn/workers/sync.py"},
		{"/srv/venv/lib/python3.11/site-packages/requests/api.py", "requests/api.py"},
		// The innermost packages directory: a vendored copy inside a package.
		{"/srv/venv/lib/python3.11/site-packages/pip/_vendor/site-packages/x.py", "x.py"},
		{"/usr/lib/python3.11/json/decoder.py", "json/decoder.py"},
		{"/root/.pyenv/versions/3.9.18/lib/python3.9/threading.py", "threading.py"},
		{"/usr/lib/python3.13t/threading.py", "threading.py"},
		{"/usr/local/lib/python2.7/socket.py", "socket.py"},
		{"/home/me/lib/python-tools/app.py", "/home/me/lib/python-tools/app.py"},
		{"/home/me/lib/python-tools/lib/python3.12/os.py", "os.py"},
		{"/srv/app/webapp.py", "/srv/app/webapp.py"},
		{"app.py", "app.py"},
		{"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"},
		{"<string>", "<string>"},
		{"/usr/lib/python3.11/", ""},
		{"", ""},
	} {
		if got := Short(tc.path); got != tc.want {
			t.Errorf("Short(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
