"""A small Flask app with a CPU-heavy endpoint, for gunicorn profiling tests.

GET /work tokenizes and parses a text, which takes a few milliseconds of
pure Python; parse_tokens dominates. GET / answers at once. GET /wait
waits 60 seconds in time.sleep, which a gevent or eventlet worker makes a
greenlet's wait: a request in flight that no thread's stack shows.
"""

import time

from flask import Flask
# IDLE: arbiter.py:sleep sync.py:wait  (where gunicorn waits; stack oracle, see recordbench)
app = Flask(__name__)

TEXT = "let total = (alpha + beta) * gamma - delta / 42; call(fn, [1, 2, 3]);\n" * 40


def tokenize(text):
    tokens = []
    word = []
    for ch in text:
        if ch.isalnum() or ch == "_":
            word.append(ch)
            continue
        if word:
            tokens.append("".join(word))
            word = []
        if not ch.isspace():
            tokens.append(ch)
    return tokens


def parse_tokens(tokens):
    # A deliberately slow evaluator: repeated scans stand in for real
    # parsing work so that this function dominates the profile.
    depth = 0
    score = 0
    for _ in range(12):
        for i, tok in enumerate(tokens):
            if tok in "([":
                depth += 1
            elif tok in ")]":
                depth -= 1
            elif tok.isdigit():
                score += int(tok) * (depth + 1)
            else:
                score += len(tok) ^ (i & 7)
    return score


@app.route("/work")
def work():  # entry
    return str(parse_tokens(tokenize(TEXT)))  # -> parse_tokens tokenize


@app.route("/wait")
def wait_request():  # entry
    time.sleep(60)
    return "waited"


@app.route("/")
def index():  # entry
    return "ok"
