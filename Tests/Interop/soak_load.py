#!/usr/bin/env python3
"""Load for scripts/soak (issue 16, part 3), run inside a pod: plain asyncio TCP,
nothing of the mesh. Each connection sends 1 KiB and reads the 1 KiB echo.

  soak_load.py short HOST PORT COUNT CONCURRENCY
      COUNT short connections (connect, 1 KiB each way, close), CONCURRENCY at a time.
  soak_load.py long HOST PORT COUNT HOLD_SECONDS [EVERY_SECONDS]
      COUNT connections opened (200 at a time) and held together: 1 KiB each way when
      opened, HOLD_SECONDS with all of them open ("held N" is printed when they all are),
      1 KiB each way again, then all closed. With EVERY_SECONDS, each held connection
      also exchanges 1 KiB each way every EVERY_SECONDS while held (traffic throughout).

Prints one result line, `ok N failed M seconds S` (and `errors {...}` by kind when M > 0),
and progress on stderr. HOST may be a name: it is resolved once.
"""
import asyncio
import collections
import os
import resource
import socket
import sys
import time

PAYLOAD = os.urandom(1024)
TIMEOUT = 30


def raise_fd_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def exchange(reader, writer):
    writer.write(PAYLOAD)
    await writer.drain()
    echoed = await reader.readexactly(len(PAYLOAD))
    if echoed != PAYLOAD:
        raise ValueError("echo differs")


async def close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def short(host, port, count, concurrency):
    errors = collections.Counter()
    done = 0
    next_index = 0
    lock = asyncio.Lock()

    async def worker():
        nonlocal done, next_index
        while True:
            async with lock:
                if next_index >= count:
                    return
                next_index += 1
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
                try:
                    await asyncio.wait_for(exchange(reader, writer), TIMEOUT)
                finally:
                    await close(writer)
            except Exception as error:  # counted by kind, never fatal
                errors[type(error).__name__] += 1
            done += 1
            if done % 10000 == 0:
                print(f"  {done} connections", file=sys.stderr, flush=True)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count, errors


async def long(host, port, count, hold, every=0):
    errors = collections.Counter()
    gate = asyncio.Semaphore(200)

    async def open_one():
        async with gate:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
            try:
                await asyncio.wait_for(exchange(reader, writer), TIMEOUT)
            except Exception:
                await close(writer)
                raise
            return reader, writer

    results = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    opened = []
    for result in results:
        if isinstance(result, BaseException):
            errors[type(result).__name__] += 1
        else:
            opened.append(result)
    print(f"held {len(opened)}", flush=True)
    if every > 0:
        deadline = time.monotonic() + hold

        async def keep_talking(reader, writer):
            # Spread over the interval so the exchanges do not all land at once.
            await asyncio.sleep(every * (hash(writer) % 1000) / 1000)
            while time.monotonic() + every < deadline:
                async with gate:
                    await asyncio.wait_for(exchange(reader, writer), TIMEOUT)
                await asyncio.sleep(every)

        talked = await asyncio.gather(*(keep_talking(r, w) for r, w in opened), return_exceptions=True)
        still_open = []
        for connection, result in zip(opened, talked):
            if isinstance(result, BaseException):
                errors[type(result).__name__] += 1
                await close(connection[1])
            else:
                still_open.append(connection)
        opened = still_open
        await asyncio.sleep(max(0, deadline - time.monotonic()))
    else:
        await asyncio.sleep(hold)

    async def finish(reader, writer):
        async with gate:
            try:
                await asyncio.wait_for(exchange(reader, writer), TIMEOUT)
            finally:
                await close(writer)

    for result in await asyncio.gather(*(finish(r, w) for r, w in opened), return_exceptions=True):
        if isinstance(result, BaseException):
            errors[type(result).__name__] += 1
    return count, errors


def main():
    if len(sys.argv) not in (6, 7) or sys.argv[1] not in ("short", "long") or (len(sys.argv) == 7 and sys.argv[1] != "long"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, host, port, count, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    every = float(sys.argv[6]) if len(sys.argv) == 7 else 0
    raise_fd_limit()
    address = socket.gethostbyname(host)
    started = time.monotonic()
    if mode == "short":
        total, errors = asyncio.run(short(address, port, count, extra))
    else:
        total, errors = asyncio.run(long(address, port, count, extra, every))
    failed = sum(errors.values())
    print(f"ok {total - failed} failed {failed} seconds {time.monotonic() - started:.1f}", flush=True)
    if failed:
        print(f"errors {dict(errors)}", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
