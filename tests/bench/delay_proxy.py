#!/usr/bin/env python3
"""A delaying, counting, partitionable TCP proxy for the replication benchmarks (loopback only).

This machine's kernel has no netem, so the benchmarks put a proxy on every replication link.
Each route listens on one loopback port and forwards every connection it accepts to one target
port. Bytes are delayed in both directions by `delay_ms` plus a uniform jitter in
[-jitter_ms, +jitter_ms]; a chunk never overtakes the one before it (a TCP stream stays in
order), so jitter only ever adds to the delay of a chunk that follows a slower one. Bytes are
counted per route and direction as they arrive ("up" = from the dialer, "down" = from the target).

A route can be blocked (a partition): its live connections are closed and new ones are
accepted but black-holed (read and discarded, nothing forwarded) until it is unblocked, when
they are closed so that the dialer reconnects.

Run as a process, controlled by lines on stdin, one JSON reply line each on stdout:
  block NAME...   block every route with one of these names as an endpoint ("a>b": a and b)
  unblock         unblock every route
  stats           {"a>b": {"up": bytes, "down": bytes, "connections": n}, ...}
  quit
Usage: delay_proxy.py --route a>b:LISTEN:TARGET ... [--delay-ms 50] [--jitter-ms 5] [--seed 1]
       delay_proxy.py --self-test   (forwards 256 KiB through a 20 ms proxy to an echo server)
"""
import argparse
import asyncio
import json
import os
import random
import sys
import time

CHUNK_BYTES = 65536


class Route:
    """One listening port forwarded to one target port, with its counters and block state."""

    def __init__(self, name, listen_port, target_port):
        self.name = name
        self.endpoints = set(name.split(">"))
        self.listen_port = listen_port
        self.target_port = target_port
        self.bytes = {"up": 0, "down": 0}
        self.blocked = False
        self.writers = set()  # every socket of this route's live connections, to close on block
        self.connections = 0


class Proxy:
    """Serves every route on one event loop. Not thread-safe: use it from its loop only."""

    def __init__(self, routes, delay_ms, jitter_ms, seed):
        self.routes = routes
        self.delay_s = delay_ms / 1000.0
        self.jitter_s = jitter_ms / 1000.0
        self.rng = random.Random(seed)
        self.servers = []

    async def start(self):
        for route in self.routes:
            server = await asyncio.start_server(
                lambda r, w, route=route: self._accept(route, r, w), "127.0.0.1",
                route.listen_port)
            self.servers.append(server)

    async def stop(self):
        for server in self.servers:
            server.close()
        for route in self.routes:
            self._close_all(route)

    def block(self, names):
        for route in self.routes:
            if route.endpoints & set(names):
                route.blocked = True
                self._close_all(route)

    def unblock(self):
        for route in self.routes:
            if route.blocked:
                route.blocked = False
                self._close_all(route)  # the black-holed ones: the dialer reconnects

    def stats(self):
        return {route.name: dict(route.bytes, connections=route.connections)
                for route in self.routes}

    def _close_all(self, route):
        for writer in list(route.writers):
            writer.transport.abort()
        route.writers.clear()

    async def _accept(self, route, reader, writer):
        route.writers.add(writer)
        if route.blocked:
            await self._black_hole(route, reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", route.target_port)
        except OSError:
            route.writers.discard(writer)
            writer.transport.abort()
            return
        route.writers.add(up_writer)
        route.connections += 1
        await asyncio.gather(self._pump(route, "up", reader, up_writer),
                             self._pump(route, "down", up_reader, writer))
        for w in (writer, up_writer):
            route.writers.discard(w)
            w.transport.abort()

    async def _black_hole(self, route, reader, writer):
        while route.blocked and not writer.transport.is_closing():
            try:
                if not await asyncio.wait_for(reader.read(CHUNK_BYTES), timeout=0.1):
                    break
            except asyncio.TimeoutError:
                continue
            except OSError:
                break
        route.writers.discard(writer)
        writer.transport.abort()

    async def _pump(self, route, direction, reader, writer):
        """Reads from one side and writes to the other after the delay, in order."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        last_due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                route.bytes[direction] += len(data)
                jitter = self.rng.uniform(-self.jitter_s, self.jitter_s)
                last_due = max(last_due, loop.time() + self.delay_s + jitter)
                queue.put_nowait((last_due, data))
        except OSError:
            pass
        queue.put_nowait((last_due, None))
        await sender

    async def _send(self, queue, writer):
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None or writer.transport.is_closing():
                writer.transport.abort()
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                writer.transport.abort()
                return


async def serve_stdin(proxy):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await reader.readline()
        if not line:
            return
        words = line.decode().split()
        if not words:
            continue
        if words[0] == "block":
            proxy.block(words[1:])
            reply = {"ok": True}
        elif words[0] == "unblock":
            proxy.unblock()
            reply = {"ok": True}
        elif words[0] == "stats":
            reply = proxy.stats()
        elif words[0] == "quit":
            print(json.dumps({"ok": True}), flush=True)
            return
        else:
            reply = {"error": f"unknown command {words[0]}"}
        print(json.dumps(reply), flush=True)


def parse_route(text):
    name, listen_port, target_port = text.rsplit(":", 2)
    return Route(name, int(listen_port), int(target_port))


async def run(args):
    proxy = Proxy([parse_route(text) for text in args.route], args.delay_ms, args.jitter_ms,
                  args.seed)
    await proxy.start()
    try:
        await serve_stdin(proxy)
    finally:
        await proxy.stop()


async def self_test():
    """Echo server behind a 20 ms proxy: every byte comes back intact, no sooner than 40 ms."""
    async def echo(reader, writer):
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
        writer.close()

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    route = Route("t>echo", 0, echo_port)
    proxy = Proxy([route], delay_ms=20, jitter_ms=5, seed=7)
    await proxy.start()
    route.listen_port = proxy.servers[0].sockets[0].getsockname()[1]
    payload = os.urandom(256 * 1024)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", route.listen_port)
    writer.write(payload)
    await writer.drain()
    received = await asyncio.wait_for(reader.readexactly(len(payload)), timeout=10)
    elapsed_ms = (time.monotonic() - started) * 1000
    writer.close()
    await proxy.stop()
    echo_server.close()
    ok = received == payload and elapsed_ms >= 30 and route.bytes == {"up": len(payload),
                                                                      "down": len(payload)}
    print(f"delay_proxy self-test: {'ok' if ok else 'FAILED'} ({len(payload)} bytes intact="
          f"{received == payload}, round trip {elapsed_ms:.1f} ms, counted {route.bytes})")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", action="append", default=[])
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--jitter-ms", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        sys.exit(0 if asyncio.run(self_test()) else 1)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
