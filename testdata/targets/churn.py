"""A target whose stack changes constantly, to measure torn stacks.

main() loops forever calling level(n) for random n; level recurses to
depth n and then works briefly in leaf(). Every consistent stack is
<module>;main;level*k;leaf or <module>;main;level*k, with each outer
level frame on the line of its recursive call. pyprof's record benchmark
(internal/cmd/recordbench) counts the stacks that break this shape, read
from the oracle below: a trailing "# -> NAMES" says which functions of this
file a line calls ("*" for code in other files) and "# STACKS:" is a regular
expression over a whole stack's function names, root first, joined by ";",
with each run of frames from other files written "*".

Every PROGRESS_EVERY seconds main() prints how many level() calls it has
completed and the CLOCK_MONOTONIC time at which that count held:

    PROGRESS <count> <seconds>
"""

import random
import sys
import time

PROGRESS_EVERY = 0.05

# STACKS: <module>(;main(;\*|;report|(;level){1,40}(;leaf)?)?)?


def leaf():
    x = 0
    for i in range(200):
        x += i
    return x


def level(n):
    if n == 0:
        return leaf()  # -> leaf
    return level(n - 1)  # -> level


def report(done, now):
    sys.stdout.write("PROGRESS %d %.6f\n" % (done, now))
    sys.stdout.flush()


def main():
    rng = random.Random(1)  # -> *
    done = 0
    due = time.monotonic()
    while True:
        level(rng.randrange(1, 40))  # -> level *
        done += 1
        now = time.monotonic()
        if now >= due:
            report(done, now)  # -> report
            due = now + PROGRESS_EVERY


if __name__ == "__main__":
    sys.setrecursionlimit(200)
    main()  # -> main
