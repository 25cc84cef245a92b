package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testenv"
)

const jupyterhubBin = "/usr/bin/jupyterhub"

// jupyterhubConfig runs the hub on loopback without its node proxy (the
// test talks to the hub's own port) and gives a service a token for the
// REST API.
const jupyterhubConfig = `
from jupyterhub.proxy import Proxy


class NoProxy(Proxy):
    should_start = False

    async def add_route(self, routespec, target, data):
        pass

    async def delete_route(self, routespec):
        pass

    async def get_all_routes(self):
        return {}


c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUBPORT
c.JupyterHub.services = [{"name": "load", "api_token": "TOKEN"}]
c.JupyterHub.load_roles = [{"name": "load", "scopes": ["admin:users", "read:hub"], "services": ["load"]}]
c.JupyterHub.db_url = "sqlite:///DIR/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "DIR/cookie_secret"
`

// TestDumpJupyterHub dumps Debian's JupyterHub while its REST API is under
// load: the hub's event loop thread lists tasks with tornado and
// jupyterhub frames.
func TestDumpJupyterHub(t *testing.T) {
	if _, err := os.Stat(jupyterhubBin); err != nil {
		testenv.SkipOrFail(t, testenv.Pythons, "jupyterhub", "%s missing: install Debian's jupyterhub", jupyterhubBin)
	}
	dir := t.TempDir()
	const token = "pyprof-load-token-0123456789abcdef"
	hubPort := freePort(t)
	cfg := strings.NewReplacer("HUBPORT", strconv.Itoa(hubPort), "PORT", strconv.Itoa(freePort(t)), "TOKEN", token, "DIR", dir).Replace(jupyterhubConfig)
	cfgFile := filepath.Join(dir, "jupyterhub_config.py")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(jupyterhubBin, "-f", cfgFile)
	cmd.Dir = dir
	logs, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("jupyterhub log:\n%s", b)
		}
	}()
	url := "http://127.0.0.1:" + strconv.Itoa(hubPort) + "/hub/api/users"
	get := func() bool {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for deadline := time.Now().Add(60 * time.Second); !get(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("jupyterhub did not answer within 60 s")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				get()
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	var seen []string
	for try := 0; try < 40; try++ {
		time.Sleep(100 * time.Millisecond)
		out, errOut, code := runPyprof(t, "dump", "--json", "-p", itoa(cmd.Process.Pid))
		if code != 0 {
			t.Fatalf("dump exited %d: %s", code, errOut)
		}
		var ds []tasksJSON
		if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
			t.Fatalf("bad json (%v): %s", err, out)
		}
		for _, e := range ds[0].Errors {
			t.Errorf("dump error: %s", e)
		}
		for _, th := range ds[0].Threads {
			for _, tk := range th.Tasks {
				for _, f := range tk.Frames {
					if strings.Contains(f.Filename, "/tornado/") || strings.Contains(f.Filename, "/jupyterhub/") {
						seen = append(seen, tk.Name+": "+f.Function)
						break
					}
				}
			}
		}
		if len(seen) > 0 {
			t.Logf("after %d dumps: %d tasks with tornado or jupyterhub frames, e.g. %s", try+1, len(seen), seen[0])
			return
		}
	}
	t.Error("no dump listed a task with tornado or jupyterhub frames")
}
