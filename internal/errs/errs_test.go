package errs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"testing"
)

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprint("code ", e.code) }

// failer is an interface target, as the batch-failure contract is.
type failer interface {
	error
	Failed() []int
}

type regions []int

func (r regions) Error() string { return "regions" }
func (r regions) Failed() []int { return r }

func TestAs(t *testing.T) {
	ce := &codeError{7}
	for _, tc := range []struct {
		name string
		err  error
		want error // the *codeError As must find, nil for none
	}{
		{"nil", nil, nil},
		{"itself", ce, ce},
		{"other", io.EOF, nil},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ce)), ce},
		{"joined", errors.Join(io.EOF, fmt.Errorf("c: %w", ce)), ce},
		{"first of two", errors.Join(&codeError{1}, ce), nil},
		{"joined in a wrap", fmt.Errorf("d: %w", errors.Join(io.EOF, ce)), ce},
		{"several wraps", fmt.Errorf("%w and %w", io.EOF, ce), ce},
		{"joined nothing of it", errors.Join(io.EOF, fs.ErrNotExist), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := As[*codeError](tc.err)
			var std *codeError
			stdOK := errors.As(tc.err, &std)
			if ok != stdOK || got != std {
				t.Errorf("As = %v, %v; errors.As gives %v, %v", got, ok, std, stdOK)
			}
			if tc.want != nil && got != tc.want {
				t.Errorf("As = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAsInterface(t *testing.T) {
	err := fmt.Errorf("batch: %w", regions{2, 5})
	f, ok := As[failer](err)
	if !ok || len(f.Failed()) != 2 || f.Failed()[1] != 5 {
		t.Fatalf("As = %v, %v", f, ok)
	}
	if _, ok := As[failer](io.EOF); ok {
		t.Error("io.EOF found to name failed regions")
	}
}

// TestAsAllocates nothing, where errors.As would allocate its target on
// every call: the sampler calls it on every sample with a torn stack.
func TestAsAllocatesNothing(t *testing.T) {
	ce := &codeError{3}
	errs := []error{
		nil,
		io.EOF,
		fmt.Errorf("w: %w", ce),
		errors.Join(io.EOF, fmt.Errorf("w: %w", ce)),
		fmt.Errorf("w: %w", regions{1}),
	}
	n := testing.AllocsPerRun(100, func() {
		for _, err := range errs {
			As[*codeError](err)
			As[failer](err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
