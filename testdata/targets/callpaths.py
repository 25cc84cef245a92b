"""A main thread that keeps switching call paths beside 40 idle threads,
for pyprof's record benchmark.

The main thread loops over three paths, each a fraction of a millisecond:
a recursion (path_rec -> rec*13 -> spin), a generator driven from C
(path_gen -> sum(gen()) -> gen -> square) and methods (path_method ->
Shape.total -> Shape.area). IDLE_THREADS threads are parked in Event.wait()
for good: a profiler that records only active threads should record none
of them.

Every PROGRESS_EVERY seconds the main thread prints how many rounds of the
three paths it has completed and the CLOCK_MONOTONIC time at which that
count held:

    PROGRESS <count> <seconds>

Stack oracle, read by internal/cmd/recordbench: a trailing "# -> NAMES" says
which functions of this file the line calls ("*" for code in other files);
"# entry" on a def line lets code in other files call the function (here
threading's bootstrap), "# idle" marks the functions of idle threads;
"# STACKS:" is a regular expression over the function names of a whole
stack, root first, joined by ";", with each run of frames from other files
written "*". Any recorded stack outside these has an impossible shape: it
was torn while read.

Runs on CPython 3.6 through 3.13, so no newer syntax.
"""

import sys
import threading
import time

IDLE_THREADS = 40
REC_DEPTH = 12
GEN_ITEMS = 150
METHOD_CALLS = 150
SPIN = 300
PROGRESS_EVERY = 0.05

# STACKS: <module>(;main(;report|;__init__|;\*|;path_rec((;rec){1,13}|(;rec){13};spin)?|;path_gen(;gen(;square)?)?|;path_method(;total(;area)?)?)?)?|\*;idle_worker(;\*)?

_clock = time.monotonic


def spin(n):
    x = 0
    for i in range(n):
        x += i
    return x


def rec(n):
    if n == 0:
        return spin(SPIN)  # -> spin
    return rec(n - 1)  # -> rec


def path_rec():
    return rec(REC_DEPTH)  # -> rec


def square(i):
    return i * i


def gen(n):
    for i in range(n):
        yield square(i)  # -> square


def path_gen():
    return sum(gen(GEN_ITEMS))  # -> gen


class Shape(object):
    def __init__(self, side):
        self.side = side

    def area(self):
        return self.side * self.side

    def total(self, k):
        t = 0
        for _ in range(k):
            t += self.area()  # -> area
        return t


def path_method(shape):
    return shape.total(METHOD_CALLS)  # -> total


def idle_worker(event):  # entry idle
    event.wait()  # -> *


def report(done, now):
    sys.stdout.write("PROGRESS %d %.6f\n" % (done, now))
    sys.stdout.flush()


def main():
    event = threading.Event()
    for i in range(IDLE_THREADS):
        t = threading.Thread(target=idle_worker, args=(event,), name="idle-%d" % i)  # -> *
        t.daemon = True
        t.start()  # -> *
    shape = Shape(3)  # -> __init__
    done = 0
    due = _clock()
    while True:
        path_rec()  # -> path_rec
        path_gen()  # -> path_gen
        path_method(shape)  # -> path_method
        done += 1
        now = _clock()
        if now >= due:
            report(done, now)  # -> report
            due = now + PROGRESS_EVERY


if __name__ == "__main__":
    main()  # -> main
