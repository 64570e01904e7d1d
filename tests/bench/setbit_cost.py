"""Instructions and allocator calls per bitmap write on a 1 MB bitmap, under callgrind (counts that
do not depend on the machine's load): docs/commands/bitmap.md, "Cost".

    /usr/bin/python3 tests/bench/setbit_cost.py [--lattice build/bin/lattice-server]
        [--mode anywhere|first64|bitfield] [--n 500] [--seed S] [--port P]

The server gets SET bm <1 MB of 0x55>, then --n writes sent with redis-cli --pipe after a warm-up
of n/5 (seeded, the seed printed): anywhere = SETBIT of a random bit of the megabyte (every ~65th
write then replaces the value whole: more than 64 chunks), first64 = SETBIT within the first 64
chunks (never a whole-value write), bitfield = BITFIELD OVERFLOW WRAP INCRBY u16 of one of 32
fields (counters). Prints the counts per write."""
import argparse
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from per_request import CallgrindServer  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lattice", default=os.path.join(HERE, "..", "..", "build", "bin",
                                                          "lattice-server"))
    parser.add_argument("--mode", default="anywhere", choices=["anywhere", "first64", "bitfield"])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--port", type=int, default=23100)
    args = parser.parse_args()
    print(f"setbit_cost seed: {args.seed} mode {args.mode} n {args.n}", flush=True)
    rng = random.Random(args.seed)
    server = CallgrindServer("lattice", args.lattice, [], port=args.port,
                             label="lattice (callgrind)")
    server.start(timeout=120)
    try:
        pipe(server.port, resp("SET", "bm", b"\x55" * (1 << 20)))
        pipe(server.port, writes(rng, args.mode, max(args.n // 5, 1)))
        server.zero()
        pipe(server.port, writes(rng, args.mode, args.n))
        instructions, allocs, by_function = server.dump()
    finally:
        server.cleanup()
    print(f"{args.mode}: {instructions / args.n:,.0f} instructions and {allocs / args.n:.1f} "
          f"allocator calls per write ({args.n} writes, seed {args.seed})")
    for name, calls in sorted(by_function.items(), key=lambda kv: -kv[1]):
        print(f"  {name}: {calls / args.n:.1f}")


if __name__ == "__main__":
    main()
