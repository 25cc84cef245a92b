// Package frames walks a chain of Python frames from a start address:
// _PyInterpreterFrame.previous from 3.11, PyFrameObject.f_back before. It
// yields the frames (the code each runs, its line, its locals if asked)
// and the links it read (what a second read must find again), and nothing
// else: the chain of a thread, of a suspended coroutine or generator, of a
// greenlet's saved frame all walk the same way.
//
// Whether the frames a walk reads were ever one stack is not the walker's
// to say. A Judge is asked of each frame as it is read and of each caller
// and the frame above it; a walk without one (nil) keeps every frame it
// can decode, which is what a paused process, a snapshot or a fuzzer
// wants. The stack reader's judge (package pyspy) is what keeps torn
// stacks out of a running target's samples.
//
// Walks are bounded in depth and checked for cycles, so corrupt or
// changing memory ends a walk with an error, not a hang.
package frames
