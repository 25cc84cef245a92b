package gentable

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRows(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name, src string
		want      [][]string
		lines     []int
		err       string
	}{
		{"rows", "# header\n\n3.11 8 16\n  3.12 8 24  \n", [][]string{{"3.11", "8", "16"}, {"3.12", "8", "24"}}, []int{3, 4}, ""},
		{"short row", "3.11 8 16\n3.12 8\n", [][]string{{"3.11", "8", "16"}}, []int{1}, "t.txt:2: 2 fields, want 3"},
		{"row refused", "3.11 8 16\nbad 1 2\n", [][]string{{"3.11", "8", "16"}}, []int{1}, "boom"},
		{"empty", "# nothing\n", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]string
			var lines []int
			err := Rows([]byte(tc.src), "t.txt", 3, func(n int, f []string) error {
				if f[0] == "bad" {
					return boom
				}
				got, lines = append(got, f), append(lines, n)
				return nil
			})
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(lines, tc.lines) {
				t.Errorf("rows %q at %v, want %q at %v", got, lines, tc.want, tc.lines)
			}
		})
	}
}
