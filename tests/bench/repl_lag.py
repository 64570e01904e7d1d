#!/usr/bin/env python3
"""Replication lag and bytes per op between two Lattice regions on loopback.

Starts two regions (build/bin/lattice-server, or $LATTICE_SERVER), writes `--ops` SETs to
region A at about `--rate` per second, and for each measures the time from A's acknowledgement
until region B shows the value (polling B; the poll interval bounds the resolution). Prints
p50/p99/max lag and the replication bytes A sent per op (CRDT.STATUS bytes_out / ops).
Usage: tests/bench/repl_lag.py [--ops 2000] [--rate 1000] [--appendfsync everysec]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import start_regions  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--appendfsync", default="everysec")
    args = parser.parse_args()
    regions = start_regions(2, "--appendfsync", args.appendfsync)
    try:
        a, b = (server.client() for server in regions)
        lags = []
        interval = 1.0 / args.rate
        value = "x" * 16
        started = time.monotonic()
        for i in range(args.ops):
            key = f"lag:{i:08d}"
            a.set(key, value)
            acked = time.monotonic()
            deadline = acked + 5.0
            while b.get(key) is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"op {i} not visible in B after 5 s")
            lags.append((time.monotonic() - acked) * 1000.0)
            next_at = started + (i + 1) * interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing the workload, not synchronising
        raw = a.execute_command("CRDT.STATUS")
        status = dict(zip(raw[0::2], raw[1::2]))
        peer = dict(zip(status[b"peers"][0][0::2], status[b"peers"][0][1::2]))
        bytes_per_op = peer[b"bytes_out"] / args.ops
        print(f"ops={args.ops} rate={args.rate}/s appendfsync={args.appendfsync}")
        print(f"lag_ms p50={percentile(lags, 0.5):.3f} p99={percentile(lags, 0.99):.3f} "
              f"max={max(lags):.3f}")
        print(f"replication bytes per op (A->B, SET 12-byte key, 16-byte value, incl. acks "
              f"and heartbeats): {bytes_per_op:.1f}")
    finally:
        for server in regions:
            server.cleanup()


if __name__ == "__main__":
    main()
