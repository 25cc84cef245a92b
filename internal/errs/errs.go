// Package errs holds error helpers that the sampling hot path can afford.
//
// errors.As takes a pointer to the caller's variable, which escapes to the
// heap: called on every sample (a batch read past the end of a mapping, a
// torn stack), it costs an allocation each time. As finds the same error
// by value instead.
package errs

// As returns the first error in err's tree that is a T, and whether there
// is one: the tree errors.As walks, depth first through Unwrap() error and
// Unwrap() []error. Unlike errors.As it does not consult As methods, which
// no error of this module has. It allocates nothing unless an Unwrap
// method does.
func As[T error](err error) (T, bool) {
	for err != nil {
		if t, ok := err.(T); ok {
			return t, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if t, ok := As[T](inner); ok {
					return t, true
				}
			}
			err = nil
		default:
			err = nil
		}
	}
	var zero T
	return zero, false
}
