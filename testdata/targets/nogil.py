"""Target with a thread that runs without holding the GIL, for pyprof's tests
of thread states.

The "hasher" thread hashes a large buffer over and over: hashlib releases the
GIL while it hashes more than 2 KiB, so the kernel shows the thread running
while no thread holds the GIL. The main thread parks on a lock. Once both are
in place, a short-lived reporter thread prints one line in the same format as
stacks.py, with empty frame lists because the hasher's stack moves:

    PYPROF-READY {"pid": ..., "version": ..., "executable": ..., "threads": [...]}

Usage: nogil.py
"""

import _thread
import hashlib
import json
import os
import platform
import sys
import threading
import traceback

_BLOCK = _thread.allocate_lock()
_BLOCK.acquire()
_READY = threading.Semaphore(0)
_native_id = getattr(_thread, "get_native_id", lambda: None)
_NATIVE_IDS = {}


def _arrived():
    _NATIVE_IDS[_thread.get_ident()] = _native_id()
    _READY.release()


def hash_forever():
    data = b"x" * (8 << 20)
    _arrived()
    while True:
        hashlib.sha256(data).digest()


def park():
    _arrived()
    _BLOCK.acquire()


def _report(threads):
    for _ in threads:
        _READY.acquire()
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "threads": [],
    }
    for tid, shape in sorted(threads.items(), key=lambda kv: kv[1]):
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


def _reporter(threads):
    try:
        _report(threads)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def main():
    hasher = threading.Thread(target=hash_forever, name="hasher", daemon=True)
    hasher.start()
    threads = {_thread.get_ident(): "park", hasher.ident: "hash"}
    # Not a threading.Thread, so it never shows up in threading._active and
    # its OS thread is gone once it has printed.
    _thread.start_new_thread(_reporter, (threads,))
    park()


if __name__ == "__main__":
    main()
