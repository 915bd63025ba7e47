"""Holds N idle keep-alive connections to HOST:PORT, each after one request (as TVs do).
Prints "ready <n>" once all are open and answered, then waits for stdin to close; exiting
closes them all. Usage: python3 bench/idle_clients.py N PORT"""
import asyncio
import sys


async def one(port: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return writer


async def main() -> None:
    n, port = int(sys.argv[1]), int(sys.argv[2])
    writers = []
    # open in batches: a listen backlog of 128..4096 must not overflow
    for start in range(0, n, 200):
        batch = await asyncio.gather(*(one(port) for _ in range(start, min(n, start + 200))))
        writers.extend(batch)
    print(f"ready {len(writers)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for w in writers:
        w.close()


asyncio.run(main())
