# Computes repr() of every value in the corpus written by python_test.go.
# Runs unchanged on Python 2.7 and 3.6+, so it avoids f-strings and anything
# newer than 2.7 offers.
import json
import struct
import sys

PY2 = sys.version_info[0] == 2
if PY2:
    char = unichr  # noqa: F821
    mkint = long  # noqa: F821

    def mkbytes(l):
        return ''.join(chr(b) for b in l)
else:
    char = chr
    mkint = int
    mkbytes = bytes

with open(sys.argv[1]) as f:
    corpus = json.load(f)


def container_reprs():
    l = []
    l.append(l)
    d = {}
    d[1] = d
    t = ([],)
    t[0].append(t)
    return [
        repr(()), repr((1,)), repr((1, 2)),
        repr([]), repr([1]), repr([1, 2]),
        repr({}), repr({1: 2}), repr({1: 2, 3: 4}),
        repr(set()), repr(set([1])), repr(set([1, 2])),
        repr(frozenset()), repr(frozenset([1])), repr(frozenset([1, 2])),
        repr(l), repr(d), repr(t),
    ]


out = {
    'version': list(sys.version_info[:2]),
    'floats': [repr(struct.unpack('<d', struct.pack('<Q', int(h, 16)))[0])
               for h in corpus['floats']],
    'ints': [repr(mkint(s)) for s in corpus['ints']],
    'strs': [repr(u''.join([char(c) for c in cps])) for cps in corpus['strs']],
    'bytes': [repr(mkbytes(b)) for b in corpus['bytes']],
    'containers': container_reprs(),
}
with open(sys.argv[2], 'w') as f:
    json.dump(out, f)
