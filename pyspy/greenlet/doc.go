// Package greenlet finds the greenlets of a CPython process from outside
// and reads each one's state and parked stack: gevent's and eventlet's
// workers keep every waiting request in a greenlet, whose frames no thread
// shows.
//
// There is no registry of greenlets in the target (gevent itself finds
// them with gc.get_objects()), so Scan walks the interpreter's GC lists,
// bounded in objects and time, and keeps the objects whose type derives
// from greenlet.greenlet. Decode then reads each one through greenlet's
// C++ impl object, whose layout depends on the greenlet release and the
// CPython minor: layouts_gen.go holds the builds this package knows,
// generated from layouts.txt, and any other release is refused with
// ErrUnknownRelease rather than read with a guessed layout. A parked
// greenlet's frames (3.11+) stay in its own data stack chunks; they are
// walked with package frames from the _PyInterpreterFrame greenlet saved
// when it switched away.
//
// Everything read is untrusted: counts, depths and chains are bounded and
// checked for cycles, and each impl must point back at its PyGreenlet, so
// corrupt or moving memory gives an error, not a wrong stack.
package greenlet

//go:generate go run ../../internal/cmd/gengreenlet -i layouts.txt -o layouts_gen.go
