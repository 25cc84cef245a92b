"""A target whose stack changes constantly, to measure torn stacks.

main() loops forever calling level(n) for random n; level recurses to
depth n and then works briefly in leaf(). Every consistent stack is
<module>;main;level*k;leaf or <module>;main;level*k, with each outer
level frame on the line of its recursive call. pyprof's record benchmark
counts the stacks that break this shape.
"""

import random
import sys


def leaf():
    x = 0
    for i in range(200):
        x += i
    return x


def level(n):
    if n == 0:
        return leaf()  # LEAF
    return level(n - 1)  # RECURSE


def main():
    rng = random.Random(1)
    while True:
        level(rng.randrange(1, 40))


if __name__ == "__main__":
    print("PYPROF-READY {}", flush=True)
    sys.setrecursionlimit(200)
    main()
