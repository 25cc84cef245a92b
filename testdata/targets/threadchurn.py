"""A target that starts and ends threads continuously, for pyprof's
resource tests and benchmarks (internal/cmd/leakbench): every --every
seconds the main thread starts a thread that works in pure Python for a
few milliseconds, sleeps for a few more (a waiting thread, whose run
state a profiler reads from /proc) and ends, so a profiler sees thread ids
come and go for as long as it runs.

Once started it prints one line in the format of stacks.py, with empty
frame lists since the stacks move:

    PYPROF-READY {"pid": ..., "version": ..., "executable": ..., "threads": [...]}

and then, every second, how many threads it has started:

    STARTED <count>

Usage: threadchurn.py [--every SECONDS] [--work SECONDS] [--sleep SECONDS]
"""

import argparse
import json
import os
import platform
import sys
import threading
import time


def work(seconds, sleep):
    until = time.time() + seconds
    x = 1
    while time.time() < until:
        x = (x * 1103515245 + 12345) % 2147483648
    time.sleep(sleep)
    return x


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=float, default=0.05, help="seconds between thread starts")
    parser.add_argument("--work", type=float, default=0.002, help="seconds each thread works")
    parser.add_argument("--sleep", type=float, default=0.02, help="seconds each thread then sleeps")
    args = parser.parse_args()
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "threads": [{
            "thread_id": threading.current_thread().ident,
            "native_id": getattr(threading, "get_native_id", lambda: None)(),
            "name": threading.current_thread().name,
            "shape": "churn",
            "frames": [],
        }],
    }
    sys.stdout.write("PYPROF-READY " + json.dumps(report, ensure_ascii=True) + "\n")
    sys.stdout.flush()
    started = 0
    last = time.time()
    while True:
        t = threading.Thread(target=work, args=(args.work, args.sleep), name="churn-%d" % started)
        t.start()
        started += 1
        time.sleep(args.every)
        t.join()
        if time.time() - last >= 1:
            last = time.time()
            sys.stdout.write("STARTED %d\n" % started)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
