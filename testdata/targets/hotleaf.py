"""A deep recursion over a hot leaf, for pyprof's record benchmark.

main() calls descend(DEPTH) forever; descend recurses DEPTH frames deep and
then calls fib(FIB) LEAF_CALLS times, so the 40 outer frames stay put for a
while but the innermost frame changes every microsecond or so.

Every PROGRESS_EVERY seconds the main thread prints how many fib(FIB) calls
it has completed and the CLOCK_MONOTONIC time at which that count held:

    PROGRESS <count> <seconds>

Stack oracle, read by internal/cmd/recordbench: a trailing "# -> NAMES" says
which functions of this file the line calls ("*" for code in other files);
"# STACKS:" is a regular expression over the function names of a whole
stack, root first, joined by ";". Any recorded stack outside both has an
impossible shape: it was torn while read.

Runs on CPython 3.6 through 3.13, so no newer syntax.
"""

import sys
import time

DEPTH = 40
FIB = 14
LEAF_CALLS = 5
PROGRESS_EVERY = 0.05

# STACKS: <module>(;main(;report|(;descend){1,41}|(;descend){41}(;fib){1,14})?)?

_clock = time.monotonic


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)  # -> fib


def descend(n):
    if n == 0:
        for _ in range(LEAF_CALLS):
            fib(FIB)  # -> fib
        return LEAF_CALLS
    return descend(n - 1)  # -> descend


def report(done, now):
    sys.stdout.write("PROGRESS %d %.6f\n" % (done, now))
    sys.stdout.flush()


def main():
    done = 0
    due = _clock()
    while True:
        done += descend(DEPTH)  # -> descend
        now = _clock()
        if now >= due:
            report(done, now)  # -> report
            due = now + PROGRESS_EVERY


if __name__ == "__main__":
    main()  # -> main
