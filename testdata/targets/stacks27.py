# -*- coding: utf-8 -*-
"""Oracle target for pyprof on Python 2.7: the twin of stacks.py.

stacks.py is Python 3 only; this file speaks the same protocol with the
stack shapes that exist in 2.7. Every thread ends in park(), blocked inside a
C lock acquire, so nothing moves while a profiler reads the process from
outside. The expected stacks come from the target's own view
(sys._current_frames), printed by a short-lived reporter thread as one line:

    PYPROF-READY {"pid": ..., "version": ..., "executable": ..., "threads": [...]}

Differences from stacks.py that matter to a reader of 2.7:
  - list comprehensions run in their caller's frame; dict and set
    comprehensions and generator expressions have frames of their own;
  - names are byte strings (PyStringObject); the "unicode" shape gives its
    code objects UTF-8 names, which 2.7 identifiers cannot have;
  - locals cover str (bytes), unicode, int, long and classic instances;
  - an argument that is also a cell keeps its value in both slots.

Usage: stacks27.py [--shapes a,b,c] [--recursion N]
"""

import argparse
import functools
import json
import os
import platform
import sys
import thread
import threading
import time
import traceback
import types

# Acquired once and never released: every park() blocks on it forever.
_BLOCK = thread.allocate_lock()
_BLOCK.acquire()
# Counts threads that reached park(); the reporter waits for all of them.
_READY = threading.Semaphore(0)


# The last line is one line on purpose: f_lineno is then the same whether a
# snapshot catches the thread before or inside the acquire.
def park():
    _READY.release() or _BLOCK.acquire()


PARK_LINE = park.__code__.co_firstlineno + 1


# --- recursion ---------------------------------------------------------------

_RECURSION = 80


def recurse(n):
    if n <= 0:
        return park()
    return recurse(n - 1)


def shape_recursion():
    recurse(_RECURSION)


def ping(n):
    if n <= 0:
        return park()
    return pong(n - 1)


def pong(n):
    return ping(n - 1)


def shape_mutual():
    ping(_RECURSION)


# --- methods -----------------------------------------------------------------


class Shapes(object):
    def method(self):
        return self.static_step()

    @staticmethod
    def static_step():
        return Shapes.class_step()

    @classmethod
    def class_step(cls):
        return park()


def shape_methods():
    Shapes().method()


class Classic:
    def method(self):
        return park()


def shape_classic():
    Classic().method()


# --- closures, lambdas, generators, comprehensions ---------------------------


def shape_closure():
    calls = [0]

    def bump():
        calls[0] += 1
        return park()

    return bump()


def shape_lambda():
    parker = lambda: park()  # noqa: E731 (the lambda is the point)
    return parker()


def parking_generator():
    yield park()


def shape_generator():
    return list(parking_generator())


def shape_listcomp():
    return [park() for _ in range(1)]


def shape_dictcomp():
    return {k: park() for k in range(1)}


def shape_setcomp():
    return {park() for _ in range(1)}


def shape_genexpr():
    return list(park() for _ in range(1))


# --- decorators, exceptions ----------------------------------------------------


def traced(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


@traced
def decorated_target():
    return park()


def shape_decorated():
    return decorated_target()


def shape_except():
    try:
        raise ValueError("parked in except")
    except ValueError:
        park()


def shape_finally():
    try:
        value = 1
    finally:
        park()
    return value


# --- calls spread over several lines -------------------------------------------


def consume(*args, **kwargs):
    return len(args) + len(kwargs)


def shape_multiline_arg():
    return consume(
        "first",
        len("second"),
        [3],
        {"fourth": 4},
        park(),
        "sixth",
    )


def parks_inside(*args, **kwargs):
    return park()


def shape_multiline_callee():
    return parks_inside(
        "first",
        2,
        3.0,
        [4],
        (5,),
        six=6,
    )


# --- exec'd code far into a synthetic file -------------------------------------


def _generated_source():
    lines = []
    for i in range(720):
        lines.append("# filler %d" % i if i % 3 else "")
    lines.append("def generated_entry(depth):")
    # 2.7's line deltas are unsigned bytes: gaps over 255 lines take
    # several table entries.
    lines.extend([""] * 300)
    lines.append("    value = depth + 1")
    lines.extend(["    # gap"] * 300)
    lines.append("    value = value * 2")
    lines.extend([""] * 130)
    lines.append("    return park() if value else None")
    return "\n".join(lines) + "\n"


def shape_generated():
    code = compile(_generated_source(), "<generated>", "exec")
    namespace = {"park": park}
    exec code in namespace
    return namespace["generated_entry"](1)


# --- non-ASCII function names ----------------------------------------------------


def _renamed(func, name):
    """Returns func with its code object renamed, as 2.7 identifiers cannot
    spell these names; calls between the functions go through globals."""
    c = func.__code__
    code = types.CodeType(c.co_argcount, c.co_nlocals, c.co_stacksize, c.co_flags, c.co_code,
                          c.co_consts, c.co_names, c.co_varnames, c.co_filename, name,
                          c.co_firstlineno, c.co_lnotab, c.co_freevars, c.co_cellvars)
    return types.FunctionType(code, func.__globals__, name, func.__defaults__, func.__closure__)


def unicode_outer():
    return unicode_middle()


def unicode_middle():
    return unicode_inner()


def unicode_inner():
    return park()


# One name per UTF-8 length (2-, 3- and 4-byte sequences), the same names
# stacks.py uses.
unicode_outer = _renamed(unicode_outer, u"funci\xf3n_\xf1".encode("utf-8"))
unicode_middle = _renamed(unicode_middle, u"\u95a2\u6570".encode("utf-8"))
unicode_inner = _renamed(unicode_inner, u"\U00020000".encode("utf-8"))


def shape_unicode():
    return unicode_outer()


# --- a long chain of super() calls ------------------------------------------------

_SUPER_LEVELS = 40


class Root(object):
    def step(self, depth):
        return park()


def _derive(base):
    class Level(base):
        def step(self, depth):
            return super(Level, self).step(depth + 1)

    return Level


def shape_super():
    cls = Root
    for _ in range(_SUPER_LEVELS):
        cls = _derive(cls)
    return cls().step(0)


# --- threads the threading module did not start ------------------------------------


def shape_raw_thread():
    park()


def shape_dummy_thread():
    # Registers a _DummyThread named "Dummy-N" in threading._active.
    threading.current_thread()
    park()


def shape_default_name():
    park()


# --- locals ------------------------------------------------------------------------


class Plain(object):
    def __init__(self):
        self.alpha = 1
        self.beta = "two"


class ClassicPlain:
    pass


def locals_target(pos_a, captured_arg, *rest, **extra):
    v_none = None
    v_true = True
    v_false = False
    v_zero = 0
    v_small = 7
    v_small_neg = -7
    v_int_max = sys.maxint
    v_int_min = -sys.maxint - 1
    v_long_zero = 0L
    v_long_small = 7L
    v_long_neg = -7L
    v_digit1 = 2L ** 30 - 1
    v_digit2 = 2L ** 30
    v_digit2_neg = -(2L ** 60) + 1
    v_digit3 = 2L ** 60
    v_digit3_neg = -(2L ** 64)
    v_digits_many = 10 ** 100
    v_digits_many_neg = -(10 ** 100)
    v_f_zero = 0.0
    v_f_neg_zero = -0.0
    v_f_half = 1.5
    v_f_tiny = 1e-07
    v_f_e16 = 1e16
    v_f_e15 = 1e15
    v_f_frac = 123456789.123
    v_f_inf = float("inf")
    v_f_neg_inf = -float("inf")
    v_f_nan = float("nan")
    v_f_tenth = 0.1
    v_f_third = 1.0 / 3
    v_f_denorm = 5e-324
    v_f_max = 1.7976931348623157e308
    v_s_empty = ""
    v_s_ascii = "hello"
    v_s_escapes = "it's \"quoted\" \\ back\n\t\r\x01\x7f"
    v_s_both_quotes = "it's \"both\""
    v_s_high = "\xff\x80caf\xc3\xa9"
    v_s_long = "abcdefghij" * 30
    v_u_empty = u""
    v_u_ascii = u"hello"
    v_u_escapes = u"it's \"quoted\" \\ back\n\t\r\x01\x7f"
    v_u_latin1 = u"caf\xe9"
    v_u_nbsp = u"\xa0"
    v_u_ucs2 = u"\u03a9mega"
    v_u_zwsp = u"\u200b"
    v_u_surrogate = u"\ud800"
    v_u_ucs4 = u"\U0001d11e clef"
    v_u_tag = u"\U000e0001"
    v_u_long = u"\xe9" * 300
    v_t_empty = ()
    v_t_one = (1,)
    v_t_nested = ((1, 2L), ("three", (4.0, None, u"five")))
    v_l_empty = []
    v_l_nested = [1, [2, [3, [4]]]]
    v_d_empty = {}
    v_d_nested = {"a": 1, "b": {"c": [1, 2]}}
    v_d_keys = {1: "one", (2, 3): "pair", -4: None, u"u": 5L}
    v_d_deleted = dict(("k%d" % i, i) for i in range(10))
    del v_d_deleted["k1"], v_d_deleted["k5"], v_d_deleted["k6"]
    v_d_big = dict((i, str(i)) for i in range(40))
    v_instance = Plain()
    v_instance_dict = vars(v_instance)
    v_classic = ClassicPlain()
    v_set_empty = set()
    v_set_ints = {1, 2, 3}
    v_set_strs = {"x", "y", "z"}
    v_set_deleted = set(range(12))
    v_set_deleted -= {1, 4, 9}
    v_frozenset = frozenset([1, 2])
    v_frozenset_empty = frozenset()
    v_object = object()
    # Containers inside themselves: repr() prints the one already being
    # printed as [...], {...} or (...), at any depth, and a container
    # met twice side by side in full both times.
    v_rec_list = [1, 2]
    v_rec_list.append(v_rec_list)
    v_rec_dict = {"a": 1}
    v_rec_dict["self"] = v_rec_dict
    v_rec_list_dict = [1]
    v_rec_list_dict.append({"l": v_rec_list_dict})
    v_rec_tuple = ([],)
    v_rec_tuple[0].append(v_rec_tuple)
    v_rec_deep = [0]
    _level = v_rec_deep
    for _i in range(1, 9):
        _level.append([_i])
        _level = _level[-1]
    _level.append(v_rec_deep)
    _level.append({"up": _level})
    del _level, _i
    _shared = [1]
    v_shared = [_shared, (_shared, {"s": _shared})]
    del _shared
    cell_v = [1, 2]

    def inner():
        inner_local = (captured_arg, len(cell_v))
        return park() if inner_local else None

    return inner()


def shape_locals():
    return locals_target(1, "captured", "r1", 2, extra_key=3.5)


# Frames whose locals the report records.
_RECORD_LOCALS = set([locals_target.__code__])
for _const in locals_target.__code__.co_consts:
    if getattr(_const, "co_name", None) == "inner":
        _RECORD_LOCALS.add(_const)


# --- registry ------------------------------------------------------------------------

# name -> (starter, function, thread name); a None name gets the default.
# 2.7 stores thread names as byte strings; the "unicode" thread's is UTF-8.
SHAPES = [
    ("recursion", "thread", shape_recursion, "recurse"),
    ("mutual", "thread", shape_mutual, "mutual"),
    ("methods", "thread", shape_methods, "methods"),
    ("classic", "thread", shape_classic, "classic"),
    ("closure", "thread", shape_closure, "closure"),
    ("lambda", "thread", shape_lambda, "lambda"),
    ("generator", "thread", shape_generator, "generator"),
    ("listcomp", "thread", shape_listcomp, "listcomp"),
    ("dictcomp", "thread", shape_dictcomp, "dictcomp"),
    ("setcomp", "thread", shape_setcomp, "setcomp"),
    ("genexpr", "thread", shape_genexpr, "genexpr"),
    ("decorated", "thread", shape_decorated, "decorated"),
    ("except", "thread", shape_except, "except"),
    ("finally", "thread", shape_finally, "finally"),
    ("multiline_arg", "thread", shape_multiline_arg, "multiline-arg"),
    ("multiline_callee", "thread", shape_multiline_callee, "multiline-callee"),
    ("generated", "thread", shape_generated, "generated"),
    ("unicode", "thread", shape_unicode, u"w\xf6rker-\u03a9".encode("utf-8")),
    ("super", "thread", shape_super, "super-chain"),
    ("raw_thread", "raw", shape_raw_thread, None),
    ("dummy_thread", "raw", shape_dummy_thread, None),
    ("default_name", "thread", shape_default_name, None),
    ("locals", "thread", shape_locals, "locals"),
]

# Shapes of stacks.py that 2.7 cannot have; asking for them is not an error,
# so that one --shapes list serves both scripts.
PY3_ONLY = ["asyncio"]


# --- reporting -------------------------------------------------------------------------

_EXACT = (type(None), bool, int, long, float, str, unicode, tuple, list, dict, set, frozenset)


def _render(value):
    if type(value) in _EXACT:
        return repr(value)
    return "<%s at 0x%x>" % (type(value).__name__, id(value))


def _frame_locals(frame):
    code = frame.f_code
    values = frame.f_locals
    nargs = code.co_argcount
    nargs += bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)
    arguments = set(code.co_varnames[:nargs])
    names = list(code.co_varnames)
    # An argument that is also a cell shows up in both tuples.
    names += [n for n in code.co_cellvars if n not in names]
    names += list(code.co_freevars)
    out = []
    for name in names:
        if name not in values:
            continue
        value = values[name]
        out.append({
            "name": name,
            "value": _render(value),
            "repr": repr(value),
            "argument": name in arguments,
        })
    return out


def _frame_list(frame):
    frames = []
    while frame is not None:
        code = frame.f_code
        entry = {
            "function": code.co_name,
            "filename": code.co_filename,
            "line": frame.f_lineno,
        }
        if code in _RECORD_LOCALS:
            entry["locals"] = _frame_locals(frame)
        frames.append(entry)
        frame = frame.f_back
    return frames


def _signature(frames):
    sig = {}
    for tid, frame in frames.items():
        stack = []
        while frame is not None:
            stack.append((id(frame.f_code), frame.f_lineno))
            frame = frame.f_back
        sig[tid] = stack
    return sig


def _all_parked(frames):
    for frame in frames.values():
        if frame.f_code is not park.__code__ or frame.f_lineno != PARK_LINE:
            return False
    return True


def _report(shapes):
    me = thread.get_ident()
    for _ in shapes:
        _READY.acquire()
    started = time.time()
    warned = False
    previous = None
    while True:
        frames = sys._current_frames()
        frames.pop(me, None)
        sig = _signature(frames)
        if sig == previous and len(frames) == len(shapes) and _all_parked(frames):
            break
        if not warned and time.time() - started > 20:
            # Leave a clue on stderr for the harness's timeout message.
            warned = True
            for tid, frame in frames.items():
                sys.stderr.write("thread %d (%s) not parked:\n%s" % (
                    tid, shapes.get(tid), "".join(traceback.format_stack(frame))))
            sys.stderr.flush()
        previous = sig
        time.sleep(0.1)

    order = dict((name, i) for i, (name, _, _, _) in enumerate(SHAPES))
    order["main"] = -1
    threads = []
    for tid, frame in frames.items():
        t = threading._active.get(tid)
        threads.append({
            "thread_id": tid,
            # 2.7 has no way to learn a thread's OS id.
            "native_id": None,
            "name": t.name if t is not None else None,
            "shape": shapes.get(tid, "unknown"),
            "frames": _frame_list(frame),
        })
    threads.sort(key=lambda t: (order.get(t["shape"], len(order)), t["thread_id"]))
    report = {
        "pid": os.getpid(),
        "version": platform.python_version(),
        "executable": sys.executable,
        "threads": threads,
    }
    sys.stdout.write("PYPROF-READY " + json.dumps(report, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def _reporter(shapes):
    try:
        _report(shapes)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def main():
    global _RECURSION
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="",
                        help="comma-separated subset of shapes (default all)")
    parser.add_argument("--recursion", type=int, default=80,
                        help="depth of the recursion shapes")
    args = parser.parse_args()
    _RECURSION = args.recursion

    known = [s[0] for s in SHAPES]
    wanted = [s for s in args.shapes.split(",") if s and s not in PY3_ONLY] or known
    unknown = [s for s in wanted if s not in known]
    if unknown:
        parser.error("unknown shapes %s; known: %s" % (",".join(unknown), ",".join(known)))

    shapes = {thread.get_ident(): "main"}
    for name, starter, func, thread_name in SHAPES:
        if name not in wanted:
            continue
        if starter == "raw":
            ident = thread.start_new_thread(func, ())
        else:
            t = threading.Thread(target=func, name=thread_name)
            t.daemon = True
            t.start()
            ident = t.ident
        shapes[ident] = name

    # Not a threading.Thread, so it never shows up in threading._active.
    thread.start_new_thread(_reporter, (shapes,))
    park()


if __name__ == "__main__":
    main()
