// Package speedscopetest reads back, for tests, the speedscope files that
// profile writes: the part of speedscope's file format (its
// src/lib/file-format-spec.ts) the tests read, and the checks of structure
// that every such file passes, whether it came from a Profile in memory or
// from a pyprof record run.
package speedscopetest

import (
	"encoding/json"
	"testing"
)

// File is a speedscope file as the tests read it.
type File struct {
	Schema             string `json:"$schema"`
	Exporter           string `json:"exporter"`
	Name               string `json:"name"`
	ActiveProfileIndex int    `json:"activeProfileIndex"`
	Shared             struct {
		Frames []struct {
			Name string `json:"name"`
			File string `json:"file"`
			Line int    `json:"line"`
		} `json:"frames"`
	} `json:"shared"`
	Profiles []struct {
		Type       string  `json:"type"`
		Name       string  `json:"name"`
		Unit       string  `json:"unit"`
		StartValue int64   `json:"startValue"`
		EndValue   int64   `json:"endValue"`
		Samples    [][]int `json:"samples"`
		Weights    []int64 `json:"weights"`
	} `json:"profiles"`
}

// Read decodes data and checks its structure: speedscope's schema, every
// profile sampled, in unit, named once (one per thread), with as many
// weights as samples, each positive and summing to the profile's span, and
// every frame index valid.
func Read(t testing.TB, data []byte, unit string) *File {
	t.Helper()
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("speedscope: not JSON: %v\n%s", err, data)
	}
	if f.Schema != "https://www.speedscope.app/file-format-schema.json" {
		t.Errorf("schema %q", f.Schema)
	}
	names := map[string]bool{}
	for _, p := range f.Profiles {
		if names[p.Name] {
			t.Errorf("two profiles named %q", p.Name)
		}
		names[p.Name] = true
		if p.Type != "sampled" || p.Unit != unit {
			t.Errorf("profile %q: type %q unit %q, want sampled in %s", p.Name, p.Type, p.Unit, unit)
		}
		if len(p.Samples) != len(p.Weights) {
			t.Errorf("profile %q: %d samples, %d weights", p.Name, len(p.Samples), len(p.Weights))
		}
		var sum int64
		for i, w := range p.Weights {
			if w <= 0 {
				t.Errorf("profile %q: weight %d of sample %d", p.Name, w, i)
			}
			sum += w
		}
		if sum != p.EndValue-p.StartValue {
			t.Errorf("profile %q: weights sum to %d over a span of %d", p.Name, sum, p.EndValue-p.StartValue)
		}
		for _, s := range p.Samples {
			for _, id := range s {
				if id < 0 || id >= len(f.Shared.Frames) {
					t.Errorf("profile %q: frame index %d of %d", p.Name, id, len(f.Shared.Frames))
				}
			}
		}
	}
	return &f
}
