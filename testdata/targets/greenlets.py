"""Oracle target for pyprof: greenlets parked in many shapes, under gevent or
eventlet, with the target's own view of every greenlet.

Each shape runs in a greenlet of its own and parks forever: a 5-deep call
chain ending in sleep, an event wait, a socket read, a semaphore, a join on
a child greenlet (and the child), a queue loop, a bound method, a closure;
two raw greenlet.greenlet objects switched by hand (one 40 frames deep);
the main greenlet parked on an event; the hub. Once all are parked a
reporter greenlet forks: the child walks gc.get_objects() and writes every
started, live greenlet's gr_frame chain (innermost first), so the profiled
process itself is never introspected. The parent's hub prints it, once the
reporter has ended, as one line,

    PYPROF-READY {"pid": ..., "greenlet": ..., "greenlets": [...], ...}

(the reporter is dead, and left out). Only the hub moves after
that: it runs its loop, waiting for the timers and sockets of the shapes.

Usage: greenlets.py [--lib gevent|eventlet] [--patch] [--many N] [--thread]
  --patch   monkey-patch first (gevent.monkey.patch_all(), eventlet.monkey_patch())
  --many N  park N more greenlets, each 3 calls deep in an event wait (a
            busy worker's requests, for benchmarks)
  --thread  also run a second OS thread that parks two raw greenlets of its
            own and then waits on a lock (not with --patch)
"""

import argparse
import sys

_parser = argparse.ArgumentParser()
_parser.add_argument("--lib", default="gevent", choices=["gevent", "eventlet"])
_parser.add_argument("--patch", action="store_true")
_parser.add_argument("--many", type=int, default=0)
_parser.add_argument("--thread", action="store_true")
ARGS = _parser.parse_args()

if ARGS.patch:
    if ARGS.lib == "gevent":
        from gevent import monkey
        monkey.patch_all()
    else:
        import eventlet
        eventlet.monkey_patch()

import gc  # noqa: E402 (after the patching, as patched programs do)
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import threading  # noqa: E402
import _thread  # noqa: E402

import greenlet  # noqa: E402

FOREVER = 10 ** 6

if ARGS.lib == "gevent":
    import gevent
    import gevent.event
    import gevent.lock
    import gevent.queue
    import gevent.socket

    spawn = gevent.spawn
    sleep = gevent.sleep
    Event = gevent.event.Event
    Semaphore = gevent.lock.Semaphore
    Queue = gevent.queue.Queue
    socketpair = gevent.socket.socketpair

    def join(g):
        g.join()

    def hub():
        return gevent.get_hub()
else:
    import eventlet
    import eventlet.event
    import eventlet.hubs
    import eventlet.queue
    import eventlet.semaphore
    from eventlet.green import socket as green_socket

    spawn = eventlet.spawn
    sleep = eventlet.sleep
    Event = eventlet.event.Event
    Semaphore = eventlet.semaphore.Semaphore
    Queue = eventlet.queue.Queue
    socketpair = green_socket.socketpair

    def join(g):
        g.wait()

    def hub():
        return eventlet.hubs.get_hub().greenlet

# Never set: every wait on it lasts forever.
NEVER = Event()
# Kept alive: a socket pair nobody writes to, and everything the shapes hold.
KEEP = []


# --- shapes ---------------------------------------------------------------

def chain_5():
    sleep(FOREVER)


def chain_4():
    chain_5()


def chain_3():
    chain_4()


def chain_2():
    chain_3()


def chain_1():
    chain_2()


def event_wait():
    NEVER.wait()


def socket_read():
    a, b = socketpair()
    KEEP.append((a, b))
    a.recv(1)


def semaphore_acquire():
    sem = Semaphore(0)
    sem.acquire()


def joined_child():
    NEVER.wait()


def join_child():
    child = spawn(joined_child)
    SHAPES[id(child)] = "joined_child"
    join(child)


def queue_loop():
    q = Queue()
    KEEP.append(q)
    while True:
        item = q.get()
        KEEP.append(item)


class Worker(object):
    def __init__(self, label):
        self.label = label

    def wait_method(self):
        NEVER.wait()


def make_closure(label):
    seen = []

    def closure_wait():
        seen.append(label)
        NEVER.wait()

    return closure_wait


def raw_inner():
    greenlet.getcurrent().parent.switch()


def raw_outer():
    raw_inner()


def raw_deep(n):
    if n <= 0:
        return greenlet.getcurrent().parent.switch()
    return raw_deep(n - 1)


def raw_deep_run():
    raw_deep(39)


def many_3():
    NEVER.wait()


def many_2():
    many_3()


def many_1():
    many_2()


# The second thread's: parks two greenlets, then blocks on a lock forever.
THREAD_READY = _thread.allocate_lock()
THREAD_READY.acquire()
THREAD_BLOCK = _thread.allocate_lock()
THREAD_BLOCK.acquire()
# id(greenlet) -> the OS thread ident it belongs to, for those of the
# second thread.
OWNER = {}


def thread_inner():
    greenlet.getcurrent().parent.switch()


def thread_outer():
    thread_inner()


def thread_park():
    THREAD_BLOCK.acquire()


def second_thread():
    me = threading.get_ident()
    main = greenlet.getcurrent()
    SHAPES[id(main)] = "thread_main"
    OWNER[id(main)] = me
    for shape in ("thread_raw_1", "thread_raw_2"):
        g = greenlet.greenlet(thread_outer)
        SHAPES[id(g)] = shape
        OWNER[id(g)] = me
        KEEP.append(g)
        g.switch()
    THREAD_READY.release()
    thread_park()


def main_wait():
    NEVER.wait()


# id(greenlet) -> shape name; names given; idents made (gevent).
SHAPES = {}
NAMED = {}


def start_shapes():
    started = [
        ("chain", chain_1, "chain"),
        ("event", event_wait, None),
        ("socket", socket_read, "reader"),
        ("semaphore", semaphore_acquire, None),
        ("join", join_child, "joiner"),
        ("queue", queue_loop, None),
        ("method", Worker("w").wait_method, None),
        ("closure", make_closure("c"), "closure"),
    ]
    for shape, fn, name in started:
        g = spawn(fn)
        SHAPES[id(g)] = shape
        if name and ARGS.lib == "gevent":
            g.name = name
            NAMED[id(g)] = name
        KEEP.append(g)
    for _ in range(ARGS.many):
        g = spawn(many_1)
        SHAPES[id(g)] = "many"
        KEEP.append(g)
    if ARGS.lib == "gevent":
        # Asking for minimal_ident caches it, as gevent's repr does: the
        # greenlet is then "Greenlet-N" to gevent and to pyprof.
        g = KEEP[1]
        NAMED[id(g)] = "Greenlet-%d" % g.minimal_ident

    if ARGS.thread:
        t = threading.Thread(target=second_thread, name="greenlet-thread", daemon=True)
        t.start()
        THREAD_READY.acquire()

    r1 = greenlet.greenlet(raw_outer)
    r2 = greenlet.greenlet(raw_deep_run)
    for shape, g in (("raw", r1), ("raw_deep", r2)):
        SHAPES[id(g)] = shape
        KEEP.append(g)
        g.switch()
    # Neither started nor to be shown.
    KEEP.append(greenlet.greenlet(raw_outer))


# --- the report -------------------------------------------------------------

def frame_list(frame):
    out = []
    while frame is not None:
        code = frame.f_code
        out.append({
            "function": getattr(code, "co_qualname", code.co_name),
            "filename": code.co_filename,
            "line": frame.f_lineno,
        })
        frame = frame.f_back
    return out


def view(me):
    """Every started, live greenlet but the caller: run in the child."""
    out = []
    main = greenlet.getcurrent()
    while main.parent is not None:
        main = main.parent
    for g in gc.get_objects():
        if not isinstance(g, greenlet.greenlet) or g is me or not g:
            continue
        shape = SHAPES.get(id(g))
        if g is main and id(g) not in OWNER:
            shape = "main"
        elif g is hub():
            shape = "hub"
        out.append({
            "address": id(g),
            "name": NAMED.get(id(g)),
            "shape": shape,
            "main": g.parent is None,
            "thread": OWNER.get(id(g)),
            "frames": frame_list(g.gr_frame),
        })
    out.sort(key=lambda g: g["address"])
    return out


def all_parked():
    for g in KEEP:
        if isinstance(g, greenlet.greenlet) and g and g.gr_frame is None:
            return False
    return len(SHAPES) == 11 + ARGS.many + (3 if ARGS.thread else 0)


def reporter():
    while not all_parked():
        sleep(0.05)
    # Twice more round the loop, so that every shape is in its wait.
    sleep(0.05)
    sleep(0.05)
    me = greenlet.getcurrent()
    r, w = os.pipe()
    # gevent 25's patched os.close closes in the hub, later: the read
    # below, which never yields, would wait for it forever.
    close = os.closerange
    pid = os.fork()
    if pid == 0:
        close(r, r + 1)
        data = json.dumps(view(me)).encode()
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    close(w, w + 1)
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    close(r, r + 1)
    os.waitpid(pid, 0)
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "lib": ARGS.lib,
        "greenlet": greenlet.__version__,
        "main_thread": {"name": threading.main_thread().name},
        "threads": [{"thread_id": threading.main_thread().ident, "name": "MainThread", "shape": "main", "frames": []}]
        + ([{"thread_id": OWNER[id(k)], "name": "greenlet-thread", "shape": "thread", "frames": []}
            for k in KEEP if SHAPES.get(id(k)) == "thread_raw_1"] if ARGS.thread else []),
        "greenlets": json.loads(b"".join(chunks)),
    }
    line = "PYPROF-READY " + json.dumps(report) + "\n"

    # Printed from the hub, once the reporter has ended: the report leaves
    # it out, and a reader must not find it alive.
    def emit():
        sys.stdout.write(line)
        sys.stdout.flush()

    if ARGS.lib == "gevent":
        gevent.get_hub().loop.run_callback(emit)
    else:
        eventlet.hubs.get_hub().schedule_call_global(0, emit)


start_shapes()
spawn(reporter)
main_wait()
