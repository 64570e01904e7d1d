"""Pub/Sub fan-out: messages per second one node delivers to 50 subscribers, lattice-server beside
redis-server (redis-benchmark cannot subscribe). One publisher pipelines PUBLISH of `--messages`
messages of `--size` bytes on one channel; 50 raw-socket subscribers (one reader thread each)
count the messages they receive. The figure is deliveries per second: messages x subscribers
over the time from the first PUBLISH to the last message read by the last subscriber. The
server's CPU time over that interval (from /proc) is reported too, per delivery.

    /usr/bin/python3 tests/bench/pubsub_fanout.py [--messages 20000] [--subscribers 50]
"""
import argparse
import os
import socket
import threading
import time

from servers import Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Subscriber(threading.Thread):
    def __init__(self, port, channel, marker):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"SUBSCRIBE {channel}\r\n".encode())
        self.marker = marker  # every message carries it once
        self.count = 0
        self.expected = 0
        self.done = threading.Event()

    def run(self):
        tail = b""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:  # closed by the benchmark once it has its figure
                return
            if not data:
                return
            chunk = tail + data
            self.count += chunk.count(self.marker)
            keep = len(self.marker) - 1
            tail = chunk[-keep:] if keep else b""
            if self.expected and self.count >= self.expected:
                self.done.set()


def run(server, messages, subscribers, size):
    channel = "fanout"
    marker = b"\x01M\x02"
    payload = marker + b"x" * max(0, size - len(marker))
    subs = [Subscriber(server.port, channel, marker) for _ in range(subscribers)]
    for sub in subs:
        sub.start()
    client = server.client()
    deadline = time.monotonic() + 10
    while dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) < subscribers:
        if time.monotonic() > deadline:
            raise AssertionError("subscribers did not subscribe")
        time.sleep(0.01)
    for sub in subs:
        sub.expected = messages
    command = (f"*3\r\n$7\r\nPUBLISH\r\n${len(channel)}\r\n{channel}\r\n"
               f"${len(payload)}\r\n").encode() + payload + b"\r\n"
    publisher = socket.create_connection(("127.0.0.1", server.port))
    replies = threading.Thread(target=lambda: drain(publisher, messages), daemon=True)
    replies.start()
    cpu0 = cpu_seconds(server.proc.pid)
    start = time.monotonic()
    batch = 100
    for sent in range(0, messages, batch):
        publisher.sendall(command * min(batch, messages - sent))
    for sub in subs:
        if not sub.done.wait(120):
            raise AssertionError(f"a subscriber got {sub.count} of {messages}")
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(server.proc.pid) - cpu0
    publisher.close()
    for sub in subs:
        sub.sock.close()
    deliveries = messages * subscribers
    return deliveries / elapsed, cpu / deliveries * 1e6


def drain(sock, count):
    seen = 0
    while seen < count:
        data = sock.recv(1 << 16)
        if not data:
            return
        seen += data.count(b"\r\n")


def run_both(lattice, redis_binary, plan, log=print):
    """scripts/bench's pubsub phase: {kind: {"deliveries_per_s", "messages_per_s", "cpu_us"}}."""
    results = {"load": os.getloadavg()[0]}
    for kind, binary in (("lattice", lattice), ("redis", redis_binary)):
        server = Server(kind, binary).start()
        try:
            rate, cpu_us = run(server, plan["messages"], plan["subscribers"], plan["size"])
        finally:
            server.cleanup()
        results[kind] = {"deliveries_per_s": rate, "messages_per_s": rate / plan["subscribers"],
                         "cpu_us": cpu_us}
        log(f"pubsub fan-out {kind}: {rate:,.0f} deliveries/s to {plan['subscribers']} "
            f"subscribers, {cpu_us:.2f} us server CPU per delivery")
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--lattice", default=os.path.join(ROOT, "build", "bin", "lattice-server"))
    parser.add_argument("--redis", default="redis-server")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    for kind, binary in (("lattice", args.lattice), ("redis", args.redis)):
        server = Server(kind, binary).start()
        try:
            rate, cpu_us = run(server, args.messages, args.subscribers, args.size)
        finally:
            server.cleanup()
        print(f"{kind}: {rate:,.0f} deliveries/s to {args.subscribers} subscribers "
              f"({rate / args.subscribers:,.0f} messages/s), {cpu_us:.2f} us server CPU per delivery")


if __name__ == "__main__":
    main()
