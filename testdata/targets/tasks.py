"""Oracle target for pyprof's asyncio tasks: two threads, each running an
event loop whose tasks park in many shapes.

Thread "loop-1": a 5-deep coroutine chain ending in asyncio.sleep, an
Event.wait, a Queue.get, a gather of two children, a task awaiting another
task, a pure-Python task, and a busy task that spins on the loop, awaited by
the loop's main task.

Thread "loop-2": wait_for with a timeout, an async for over an async
generator, a TaskGroup (3.11+), a shield, an unnamed task, asyncio.wait, and
a task that blocks the loop in a lock's acquire, awaited by the loop's main
task.

Once its other tasks are parked, each loop's last task takes the loop's view
of every task (name, frames innermost first, the tasks it awaits) from inside
the loop and then blocks the loop's thread synchronously, so nothing in the
loop changes afterwards. The view is taken in the process rather than in a
forked child, since from 3.14 a child's task lists are empty. The main thread
prints, once both views are in:

    PYPROF-READY {"pid": ..., "threads": [...], "tasks": {"IDENT": [...]}}

Runs unchanged on CPython 3.7 through 3.15, so it avoids newer syntax.
"""

import _thread
import asyncio
import functools
import gc
import json
import os
import sys
import threading
import types

_BLOCK = _thread.allocate_lock()
_BLOCK.acquire()
_VIEWS = {}
_VIEWS_DONE = threading.Semaphore(0)
HOUR = 3600
NAMES = sys.version_info >= (3, 8)


def spawn(coro, name):
    loop = asyncio.get_event_loop()
    if NAMES:
        return loop.create_task(coro, name=name)
    return loop.create_task(coro)


def fname(code):
    return getattr(code, "co_qualname", code.co_name)


def frame_view(f):
    return {"function": fname(f.f_code), "filename": f.f_code.co_filename, "line": f.f_lineno}


_GEN_TYPES = (types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType)


def chain(coro):
    """The await chain's frames, innermost first, as cr_await leads."""
    out, seen, c = [], set(), coro
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        if type(c).__name__ in ("async_generator_asend", "async_generator_athrow"):
            gens = [r for r in gc.get_referents(c) if isinstance(r, types.AsyncGeneratorType)]
            c = gens[0] if gens else None
            continue
        if not isinstance(c, _GEN_TYPES):
            break
        if isinstance(c, types.CoroutineType):
            f, nxt = c.cr_frame, c.cr_await
        elif isinstance(c, types.GeneratorType):
            f, nxt = c.gi_frame, c.gi_yieldfrom
        else:
            f, nxt = c.ag_frame, getattr(c, "ag_await", None)
        if f is None:
            break
        out.append(frame_view(f))
        c = nxt
    out.reverse()
    return out


def callbacks(fut):
    cbs = getattr(fut, "_callbacks", None) or []
    return [cb[0] if isinstance(cb, tuple) else cb for cb in cbs]


def awaiting(task, tasks):
    """The tasks that task awaits: the rules pyprof applies, in Python."""
    ids = set(id(t) for t in tasks)
    waiter = task._fut_waiter
    out = []

    def add(t):
        if id(t) not in [id(o) for o in out]:
            out.append(t)

    def gathered(fut, depth):
        for k in getattr(fut, "_children", None) or []:
            if id(k) in ids:
                add(k)
            elif depth < 64 and k is not fut:
                gathered(k, depth + 1)

    if waiter is not None:
        if id(waiter) in ids:
            add(waiter)
        else:
            gathered(waiter, 0)
    for child in tasks:
        for cb in callbacks(child):
            self = getattr(cb, "__self__", None)
            hit = False
            if self is task:
                hit = True
            elif waiter is not None and self is waiter:
                hit = True
            elif self is not None and getattr(self, "_parent_task", None) is task and id(self) not in ids:
                hit = True
            elif isinstance(cb, types.FunctionType) and waiter is not None:
                for cell in cb.__closure__ or ():
                    try:
                        if cell.cell_contents is waiter:
                            hit = True
                    except ValueError:
                        pass
            elif isinstance(cb, functools.partial) and waiter is not None:
                hit = any(a is waiter for a in cb.args)
            if hit:
                add(child)
    return [id(t) for t in out]


def task_name(t):
    return t.get_name() if NAMES else ""


def take_view(loop, innermost):
    """Every pending task of loop, seen from its running task."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    # Pure-Python tasks register where 3.14's all_tasks does not look.
    tasks += [t for t in getattr(asyncio.tasks, "_scheduled_tasks", ()) if t not in tasks and not t.done() and t.get_loop() is loop]
    current = asyncio.current_task(loop)
    view = []
    for t in tasks:
        coro = t.get_coro() if hasattr(t, "get_coro") else t._coro
        frames = chain(coro)
        if t is current:
            frames = [innermost] + frames
        view.append({
            "id": id(t),
            "name": task_name(t),
            "running": t is current,
            "awaiting": awaiting(t, tasks),
            "frames": frames,
        })
    return view


# --- the shapes ---------------------------------------------------------------

async def c5():
    await asyncio.sleep(HOUR)


async def c4():
    await c5()


async def c3():
    await c4()


async def c2():
    await c3()


async def c1():
    await c2()


async def event_waiter(ev):
    await ev.wait()


async def queue_getter(q):
    await q.get()


async def sleeper():
    await asyncio.sleep(HOUR)


async def gatherer():
    await asyncio.gather(sleeper(), sleeper())


async def awaiter(t):
    await t


async def wait_forer():
    await asyncio.wait_for(sleeper(), HOUR)


async def ticks():
    while True:
        await asyncio.sleep(HOUR)
        yield 1


async def async_forer():
    async for _ in ticks():
        pass


async def task_grouper():
    async with asyncio.TaskGroup() as tg:
        for n in ("tg-child-1", "tg-child-2"):
            tg.create_task(sleeper(), name=n)


async def shielder(t):
    await asyncio.shield(t)


async def waiter(ts):
    await asyncio.wait(ts)


async def settle():
    # Enough loop turns for every task to reach where it parks.
    for _ in range(20):
        await asyncio.sleep(0)


def spin():
    while True: pass  # noqa: E701 one line, so the line is the same wherever a read catches it


SPIN_LINE = spin.__code__.co_firstlineno + 1


def block():
    _BLOCK.acquire()


BLOCK_LINE = block.__code__.co_firstlineno + 1


async def busy(loop):
    await settle()
    _VIEWS[threading.get_ident()] = take_view(loop, {"function": "spin", "filename": __file__, "line": SPIN_LINE}); _VIEWS_DONE.release(); spin()  # noqa: E702


async def blocker(loop):
    await settle()
    _VIEWS[threading.get_ident()] = take_view(loop, {"function": "block", "filename": __file__, "line": BLOCK_LINE}); _VIEWS_DONE.release(); block()  # noqa: E702


async def main1():
    loop = asyncio.get_event_loop()
    spawn(c1(), "chain")
    ev = asyncio.Event()
    spawn(event_waiter(ev), "event")
    q = asyncio.Queue()
    spawn(queue_getter(q), "queue")
    spawn(gatherer(), "gatherer")
    awaited = spawn(sleeper(), "awaited")
    spawn(awaiter(awaited), "awaiter")
    pt = asyncio.tasks._PyTask(sleeper(), loop=loop)
    if NAMES:
        pt.set_name("pytask")
    await spawn(busy(loop), "busy")


async def main2():
    loop = asyncio.get_event_loop()
    spawn(wait_forer(), "wait_for")
    spawn(async_forer(), "async-for")
    if sys.version_info >= (3, 11):
        spawn(task_grouper(), "taskgroup")
    shielded = spawn(sleeper(), "shielded")
    spawn(shielder(shielded), "shielder")
    loop.create_task(sleeper())
    waited = spawn(sleeper(), "waited")
    spawn(waiter([waited]), "waiter")
    await spawn(blocker(loop), "blocker")


def run(main):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())


def main():
    threads = []
    for name, fn in (("loop-1", main1), ("loop-2", main2)):
        th = threading.Thread(target=run, args=(fn,), name=name, daemon=True)
        th.start()
        threads.append(th)
    _VIEWS_DONE.acquire()
    _VIEWS_DONE.acquire()
    report = {
        "pid": os.getpid(),
        "version": sys.version.split()[0],
        "executable": sys.executable,
        "threads": [{"thread_id": threading.main_thread().ident, "name": "MainThread", "shape": "main", "frames": []}]
        + [{"thread_id": th.ident, "name": th.name, "shape": th.name, "frames": []} for th in threads],
        "tasks": {str(k): v for k, v in _VIEWS.items()},
    }
    print("PYPROF-READY " + json.dumps(report), flush=True)
    _BLOCK.acquire()


if __name__ == "__main__":
    main()
