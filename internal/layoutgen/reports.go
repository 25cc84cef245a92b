package layoutgen

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"time"

	"github.com/pyprof/pyprof/pyversions"
)

// Reports runs script under each interpreter in pythons and decodes the
// JSON it prints into a T, keyed by the minor version ("3.9") that
// version finds in it: the generators that ask interpreters about their
// own bytecode share this.
func Reports[T any](pythons []string, script string, version func(*T) string) (map[string]T, error) {
	out := map[string]T{}
	for _, py := range pythons {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b, err := exec.CommandContext(ctx, py, "-c", script).Output()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", py, err)
		}
		var t T
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("%s: %w", py, err)
		}
		v, err := pyversions.Parse(version(&t))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", py, err)
		}
		out[v.MinorString()] = t
	}
	return out, nil
}

// Minors returns, in version order, the minors of live and those of
// committed that live lacks (kept, a generator's tables of minors without
// an interpreter on this machine).
func Minors(live, committed []string) (all, kept []string) {
	have := map[string]bool{}
	for _, m := range live {
		have[m] = true
		all = append(all, m)
	}
	for _, m := range committed {
		if !have[m] {
			kept = append(kept, m)
			all = append(all, m)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, _ := pyversions.Parse(all[i])
		c, _ := pyversions.Parse(all[j])
		return a.Less(c)
	})
	return all, kept
}
