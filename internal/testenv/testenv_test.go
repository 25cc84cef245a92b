package testenv

import "testing"

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		val, item string
		want      bool
	}{
		{"", "", false},
		{"", "3.11", false},
		{"all", "3.11", true},
		{"1", "chromium", true},
		{"3.6, 3.11", "3.11", true},
		{"3.6,3.11", "3.1", false},
		{"3.6", "", true},
		{"system", "gunicorn", false},
	} {
		t.Setenv("PYPROF_TESTENV_TEST", tc.val)
		if got := Required("PYPROF_TESTENV_TEST", tc.item); got != tc.want {
			t.Errorf("Required with %q for %q = %v, want %v", tc.val, tc.item, got, tc.want)
		}
	}
}
