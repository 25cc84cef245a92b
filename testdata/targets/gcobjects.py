"""Target for pyprof's GC-list walk: many GC-tracked objects, then it
parks. It prints how many objects the collector tracks, as
gc.get_objects() counts them, on a line "GC-OBJECTS N" before its report
line; the reader's walk of the interpreter's GC lists must visit about as
many.

Usage: gcobjects.py [N]   (N objects of a class of its own, default 20000)
"""

import gc
import json
import os
import platform
import sys
import threading


class Node:
    def __init__(self, i):
        self.i = i
        self.links = [i]


N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
nodes = [Node(i) for i in range(N)]
gc.disable()  # no collection moves objects between lists while it is read
print("GC-OBJECTS %d" % len(gc.get_objects()), flush=True)
print("PYPROF-READY " + json.dumps({
    "pid": os.getpid(), "version": platform.python_version(), "executable": sys.executable,
    "threads": [{"thread_id": threading.get_ident(), "name": "MainThread", "shape": "main", "frames": []}],
}), flush=True)
threading.Event().wait()
