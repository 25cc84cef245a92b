"""Benchmark target for record --async: one event loop with N pending
tasks (default 1000), each parked in a 3-deep coroutine chain in
asyncio.sleep, and one busy task that computes and yields to the loop
between bursts.

Usage: manytasks.py [N]
"""

import asyncio
import json
import os
import sys
import threading


async def leaf():
    await asyncio.sleep(3600)


async def middle():
    await leaf()


async def parked():
    await middle()


def work(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


async def busy():
    while True:
        work(20000)
        await asyncio.sleep(0)


async def main(n):
    loop = asyncio.get_running_loop()
    for i in range(n):
        loop.create_task(parked(), name="parked-%d" % i)
    print("PYPROF-READY " + json.dumps({"pid": os.getpid(), "threads": [{"thread_id": threading.get_ident(), "name": "MainThread", "frames": []}]}), flush=True)
    await loop.create_task(busy(), name="busy")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
