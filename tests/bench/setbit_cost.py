"""Instructions and allocator calls per bitmap write on a 1 MB bitmap, under callgrind (counts that
do not depend on the machine's load): docs/commands/bitmap.md, "Cost".

    /usr/bin/python3 tests/bench/setbit_cost.py [--lattice build/bin/lattice-server]
        [--mode anywhere|first64|bitfield] [--n 500] [--seed S] [--port P]
        [--redis /usr/bin/redis-server | --redis none] [--keep DIR] [--peers N]

The server gets SET bm <1 MB of 0x55>, then --n writes sent with redis-cli --pipe after a warm-up
of n/5 (seeded, the seed printed): anywhere = SETBIT of a random bit of the megabyte (every ~65th
write then replaces the value whole: more than 64 chunks), first64 = SETBIT within the first 64
chunks (never a whole-value write), bitfield = BITFIELD OVERFLOW WRAP INCRBY u16 of one of 32
fields (counters). Prints the counts per write, for lattice-server and then for redis-server
(appendonly yes, as scripts/bench runs it) with the same writes, and their ratio; --keep copies
both callgrind dumps into DIR (for callgrind_annotate). --peers N: region a of N + 1 regions
(full mesh, every one under callgrind) takes the writes instead, and each peer's counts per op
applied are printed beside the origin's (crdt_remote_ops counts the ops; the peers' counts include
their INFO polls while they catch up)."""
import argparse
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from per_request import CallgrindServer, KEEP  # noqa: E402
from servers import wait_caught_up  # noqa: E402


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(out)


def writes(rng, mode, n):
    out = []
    for _ in range(n):
        if mode == "anywhere":
            out.append(resp("SETBIT", "bm", rng.randrange(8 << 20), rng.randrange(2)))
        elif mode == "first64":
            out.append(resp("SETBIT", "bm", rng.randrange(64 * 256 * 8), rng.randrange(2)))
        else:
            out.append(resp("BITFIELD", "bm", "OVERFLOW", "WRAP", "INCRBY", "u16",
                            f"#{rng.randrange(32) * 64}", rng.randrange(-500, 500)))
    return b"".join(out)


def pipe(port, payload):
    subprocess.run(["redis-cli", "-p", str(port), "--pipe", "--pipe-timeout", "0"], input=payload, check=True,
                   capture_output=True, timeout=3600)


def measure(kind, binary, port, mode, n, seed):
    """(instructions, allocator calls, calls by function) over n writes on a fresh server."""
    rng = random.Random(seed)
    server = CallgrindServer(kind, binary, [], port=port, label=f"{kind} (callgrind)")
    KEEP["run"] = mode
    server.start(timeout=120)
    try:
        pipe(server.port, resp("SET", "bm", b"\x55" * (1 << 20)))
        pipe(server.port, writes(rng, mode, max(n // 5, 1)))
        server.zero()
        pipe(server.port, writes(rng, mode, n))
        return server.dump()
    finally:
        server.cleanup()


def region_args(names, ports, i):
    """Region i's arguments: its replication port is its client port + 1."""
    args = ["--region", names[i], "--replication-port", str(ports[i] + 1)]
    for j, port in enumerate(ports):
        if j != i:
            args += ["--peer", f"127.0.0.1:{port + 1}"]
    return args


def measure_peers(binary, port, mode, n, seed, peers):
    """Counts per op: the origin's per op made, each peer's per op applied."""
    rng = random.Random(seed)
    names = [chr(ord("a") + i) for i in range(peers + 1)]
    ports = [(port or 41200) + 2 * i for i in range(peers + 1)]
    regions = [CallgrindServer("lattice", binary, region_args(names, ports, i), port=ports[i],
                               label=f"lattice region {names[i]}") for i in range(peers + 1)]
    try:
        for region in regions:
            region.start(timeout=120)
        if not wait_caught_up(regions, timeout=120):
            raise RuntimeError("regions did not connect")
        pipe(regions[0].port, resp("SET", "bm", b"\x55" * (1 << 20)))
        pipe(regions[0].port, writes(rng, mode, max(n // 5, 1)))
        if not wait_caught_up(regions, timeout=600):
            raise RuntimeError("peers did not catch up after the warm-up")
        before = [int(r.info("crdt").get("crdt_remote_ops", 0)) for r in regions]
        for region in regions:
            region.zero()
        pipe(regions[0].port, writes(rng, mode, n))
        if not wait_caught_up(regions, timeout=1200):
            raise RuntimeError("peers did not catch up")
        ops = [int(r.info("crdt").get("crdt_remote_ops", 0)) - b for r, b in zip(regions, before)]
        counts = [region.dump() for region in regions]
    finally:
        for region in regions:
            region.cleanup()
    applied = max(ops[1:])
    print(f"{mode} ({n} writes, {applied} ops, seed {seed}), per op:")
    print(f"  origin: {counts[0][0] / applied:,.0f} instructions and "
          f"{counts[0][1] / applied:.1f} allocator calls per op made")
    for name, count, got in zip(names[1:], counts[1:], ops[1:]):
        print(f"  peer {name}: {count[0] / got:,.0f} instructions and {count[1] / got:.1f} "
              f"allocator calls per op applied ({got} ops)")


def report(label, counts, n):
    instructions, allocs, by_function = counts
    print(f"  {label}: {instructions / n:,.0f} instructions and {allocs / n:.1f} allocator calls "
          f"per write")
    for name, calls in sorted(by_function.items(), key=lambda kv: -kv[1]):
        print(f"    {name}: {calls / n:.1f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lattice", default=os.path.join(HERE, "..", "..", "build", "bin",
                                                          "lattice-server"))
    parser.add_argument("--redis", default="/usr/bin/redis-server",
                        help="redis-server to run the same writes on ('none' skips it)")
    parser.add_argument("--mode", default="anywhere", choices=["anywhere", "first64", "bitfield"])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--keep", help="copy the callgrind dumps into this directory")
    parser.add_argument("--peers", type=int, default=0,
                        help="N > 0: the writes go to region a of N + 1 regions, all counted")
    args = parser.parse_args()
    print(f"setbit_cost seed: {args.seed} mode {args.mode} n {args.n}", flush=True)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        KEEP["dir"] = args.keep
    if args.peers:
        measure_peers(args.lattice, args.port, args.mode, args.n, args.seed, args.peers)
        return
    lattice = measure("lattice", args.lattice, args.port, args.mode, args.n, args.seed)
    print(f"{args.mode} ({args.n} writes, seed {args.seed}):")
    report("lattice", lattice, args.n)
    if args.redis != "none":
        redis = measure("redis", args.redis, args.port and args.port + 1, args.mode, args.n, args.seed)
        report("redis", redis, args.n)
        print(f"  lattice/redis: {lattice[0] / redis[0]:.2f}x instructions, "
              f"{(lattice[1] - redis[1]) / args.n:+.1f} allocator calls per write")


if __name__ == "__main__":
    main()
