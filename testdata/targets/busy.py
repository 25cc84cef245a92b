"""CPU-bound target for pyprof's sampling tests and benchmarks.

By default the main thread recurses --depth frames and then spins in pure
Python at that depth forever; --threads adds threads doing the same, and
--idle threads that wait on an event forever (shape "idle"). With
--split A,B,C each of them instead cycles every 50 ms through hot_a, hot_b and
hot_c, spending A%, B% and C% of wall time in each, so a profiler's shares can
be checked against known ones.

Once every thread is at the bottom, a short-lived reporter thread prints one
line in the same format as stacks.py, with empty frame lists because busy
stacks move:

    PYPROF-READY {"pid": ..., "version": ..., "executable": ..., "threads": [...]}

Runs unchanged on CPython 2.7 and 3.6 through 3.13, so it avoids newer syntax
and papers over the renamed modules and functions.

Usage: busy.py [--depth N] [--threads K] [--idle M] [--split A,B,C]
"""

import argparse
import json
import os
import platform
import sys
import threading
import time
import traceback

try:
    import _thread
except ImportError:  # Python 2
    import thread as _thread

# perf_counter is 3.3+; 2.7's time.time is fine-grained enough on Linux.
_clock = getattr(time, "perf_counter", time.time)
_READY = threading.Semaphore(0)
_native_id = getattr(_thread, "get_native_id", lambda: None)
_NATIVE_IDS = {}

CYCLE = 0.050


def _arrived():
    _NATIVE_IDS[_thread.get_ident()] = _native_id()
    _READY.release()


def spin():
    _arrived()
    x = 1
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


# Each share gets its own function with its own loop, so samples land on
# distinct code objects rather than on one shared helper.
def hot_a(until):
    n = 0
    while _clock() < until:
        n += 1
    return n


def hot_b(until):
    n = 0
    while _clock() < until:
        n += 1
    return n


def hot_c(until):
    n = 0
    while _clock() < until:
        n += 1
    return n


def split_loop(shares):
    _arrived()
    a, b, c = (CYCLE * s / 100.0 for s in shares)
    while True:
        # Boundaries are taken from one start time, so the shares hold per
        # cycle even when a single call overshoots.
        start = _clock()
        hot_a(start + a)
        hot_b(start + a + b)
        hot_c(start + a + b + c)


_NEVER = threading.Event()


def idle():
    _arrived()
    _NEVER.wait()


def descend(n, bottom, *args):
    if n <= 1:
        return bottom(*args)
    return descend(n - 1, bottom, *args)


def _report(threads, main_id):
    for _ in threads:
        _READY.acquire()
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "threads": [],
    }
    for tid, shape in sorted(threads.items(), key=lambda kv: kv[0] != main_id):
        thread = threading._active.get(tid)
        report["threads"].append({
            "thread_id": tid,
            "native_id": _NATIVE_IDS.get(tid),
            "name": thread.name if thread is not None else None,
            "shape": shape,
            "frames": [],
        })
    sys.stdout.write("PYPROF-READY " + json.dumps(report, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def _reporter(threads, main_id):
    try:
        _report(threads, main_id)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def _parse_split(text):
    try:
        shares = [float(s) for s in text.split(",")]
    except ValueError:
        shares = []
    if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 100) > 1e-9:
        raise argparse.ArgumentTypeError("want three percentages summing to 100, like 60,30,10")
    return shares


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=10, help="frames below the spinning one")
    parser.add_argument("--threads", type=int, default=0, help="extra threads doing the same")
    parser.add_argument("--idle", type=int, default=0, help="threads waiting on an event")
    parser.add_argument("--split", type=_parse_split, default=None,
                        help="percentages of wall time in hot_a,hot_b,hot_c")
    args = parser.parse_args()
    if args.depth < 1 or args.threads < 0 or args.idle < 0:
        parser.error("--depth must be at least 1, --threads and --idle not negative")

    if args.split is None:
        bottom, bottom_args, shape = spin, (), "spin"
    else:
        bottom, bottom_args, shape = split_loop, (args.split,), "split"

    threads = {_thread.get_ident(): shape}
    for i in range(args.threads):
        worker = threading.Thread(target=descend, args=(args.depth, bottom) + bottom_args,
                                  name="busy-%d" % i)
        worker.daemon = True
        worker.start()
        threads[worker.ident] = shape
    for i in range(args.idle):
        waiter = threading.Thread(target=idle, name="idle-%d" % i)
        waiter.daemon = True
        waiter.start()
        threads[waiter.ident] = "idle"

    # Not a threading.Thread, so it never shows up in threading._active and
    # its OS thread is gone once it has printed.
    _thread.start_new_thread(_reporter, (threads, _thread.get_ident()))
    descend(args.depth, bottom, *bottom_args)


if __name__ == "__main__":
    main()
