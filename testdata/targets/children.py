"""A root whose Python children come and go, for pyprof's resource tests:
it forks a child every --every seconds, each of which calls down a chain
of --depth generated functions, spins at the bottom for --life seconds and
exits, as a gunicorn worker replaced after --max-requests does. The
functions are long, so that a profiler reading a child decodes sizeable
line tables: what it keeps of an exited child shows.

The root prints one line in the format of stacks.py, with empty frame
lists, and then one per child it has reaped:

    PYPROF-READY {"pid": ..., "version": ..., "executable": ..., "threads": [...]}
    REAPED <pid>

SIGUSR1 makes it stop forking; it then waits for its children and sleeps.

Usage: children.py [--every SECONDS] [--life SECONDS] [--depth N] [--concurrent N]
"""

import argparse
import json
import os
import platform
import signal
import sys
import threading
import time

_STOP = []


def _generate(depth, body_lines):
    # Each level is a function of body_lines statements before its call to
    # the next, so its line table is long.
    src = []
    for i in range(depth):
        src.append("def level_%d(until):" % i)
        src.append("    x = 0")
        for j in range(body_lines):
            src.append("    x = x + %d" % j)
        if i + 1 < depth:
            src.append("    return level_%d(until) + x" % (i + 1))
        else:
            src.append("    while time.time() < until:")
            src.append("        x = (x * 1103515245 + 12345) % 2147483648")
            src.append("    return x")
    ns = {"time": time}
    exec(compile("\n".join(src), "<children-chain>", "exec"), ns)
    return ns["level_0"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--life", type=float, default=0.3)
    parser.add_argument("--depth", type=int, default=60)
    parser.add_argument("--body", type=int, default=200, help="statements in each function")
    parser.add_argument("--concurrent", type=int, default=3)
    args = parser.parse_args()
    chain = _generate(args.depth, args.body)
    signal.signal(signal.SIGUSR1, lambda *_: _STOP.append(True))
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "threads": [{
            "thread_id": threading.current_thread().ident,
            "native_id": getattr(threading, "get_native_id", lambda: None)(),
            "name": threading.current_thread().name,
            "shape": "root",
            "frames": [],
        }],
    }
    sys.stdout.write("PYPROF-READY " + json.dumps(report, ensure_ascii=True) + "\n")
    sys.stdout.flush()
    kids = set()
    while not _STOP or kids:
        if not _STOP and len(kids) < args.concurrent:
            pid = os.fork()
            if pid == 0:
                try:
                    chain(time.time() + args.life)
                finally:
                    os._exit(0)
            kids.add(pid)
        time.sleep(args.every)
        for pid in list(kids):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                kids.discard(pid)
                sys.stdout.write("REAPED %d\n" % pid)
                sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
