// Package gentable is the frame the generators of hand-kept layout
// tables share (internal/cmd/gengreenlet, internal/cmd/genasyncio): a text
// table checked into the repository, one row a line, turned into a Go
// file by go generate. Each generator says what a row means; this package
// reads the rows and writes the file.
package gentable

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
)

// Main is a generator's main: it reads the table named by -i (default
// layouts.txt), hands it with its name to generate, and writes what
// generate returns to -o (default layouts_gen.go).
func Main(generate func(src []byte, name string) ([]byte, error)) {
	in := flag.String("i", "layouts.txt", "the layout description")
	out := flag.String("o", "layouts_gen.go", "the Go file to write")
	flag.Parse()
	src, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	code, err := generate(src, *in)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		log.Fatal(err)
	}
}

// Rows calls row with the fields of each line of src that is neither
// blank nor a comment (#), and its line number; a row with other than
// want fields is an error naming the table's line.
func Rows(src []byte, name string, want int, row func(n int, f []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != want {
			return fmt.Errorf("%s:%d: %d fields, want %d", name, n, len(f), want)
		}
		if err := row(n, f); err != nil {
			return err
		}
	}
	return sc.Err()
}
