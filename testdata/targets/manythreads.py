"""A target of many threads, few of them busy, for pyprof's cost benchmarks
(internal/cmd/leakbench, internal/sampler): --idle threads park in
Event.wait, then --busy threads (the main one among them) spin in pure
Python --depth frames deep. The parked threads start first: started
behind busy ones, each would wait for the GIL.

Once every thread is in place it prints one line in the format of
stacks.py, with empty frame lists since the busy stacks move:

    PYPROF-READY {"pid": ..., "version": ..., "executable": ..., "threads": [...]}

Usage: manythreads.py [--idle N] [--busy K] [--depth D]
"""

import argparse
import json
import os
import platform
import sys
import threading

_NEVER = threading.Event()
_READY = threading.Semaphore(0)


def idle():
    _READY.release()
    _NEVER.wait()


def spin():
    x = 1
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def descend(n, ready):
    if n <= 1:
        if ready:
            _READY.release()
        return spin()
    return descend(n - 1, ready)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=496)
    parser.add_argument("--busy", type=int, default=4, help="spinning threads, the main one included")
    parser.add_argument("--depth", type=int, default=10)
    args = parser.parse_args()
    threads = [(threading.current_thread(), "spin")]
    for i in range(args.idle):
        t = threading.Thread(target=idle, name="idle-%d" % i)
        t.daemon = True
        t.start()
        threads.append((t, "idle"))
    for _ in range(args.idle):
        _READY.acquire()
    for i in range(args.busy - 1):
        t = threading.Thread(target=descend, args=(args.depth, True), name="busy-%d" % i)
        t.daemon = True
        t.start()
        threads.append((t, "spin"))
    for _ in range(args.busy - 1):
        _READY.acquire()
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "threads": [{
            "thread_id": t.ident,
            "native_id": getattr(t, "native_id", None),
            "name": t.name,
            "shape": shape,
            "frames": [],
        } for t, shape in threads],
    }
    sys.stdout.write("PYPROF-READY " + json.dumps(report, ensure_ascii=True) + "\n")
    sys.stdout.flush()
    descend(args.depth, False)


if __name__ == "__main__":
    main()
