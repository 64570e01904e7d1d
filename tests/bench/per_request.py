#!/usr/bin/env python3
"""Per-request counts that do not depend on how busy this shared machine is: user-space
instructions (callgrind), allocator calls (callgrind's call counts into malloc, calloc, realloc,
the aligned forms and operator new, which jemalloc serves directly) and syscalls by name (perf's
syscalls:sys_enter_* tracepoints), for lattice-server and for redis-server (appendonly yes, appendfsync everysec, as scripts/bench runs
it), under the same redis-benchmark command. Run through scripts/profile.

Each server is started fresh per test, loaded as scripts/bench loads it (GET and SET: the 100,000
keys -r draws; HSET, SADD, ZADD: redis-benchmark's single key, deleted first; XADD, GEOADD,
PFADD, SETBIT: cpu.py's custom commands on their keys, cleared first), warmed up by a run of the
same test, and then measured over exactly n requests:

- syscalls: `perf stat -e 'syscalls:sys_enter_*' -p PID` around the run (every thread). read and
  write are per request at -P1; epoll_wait and the other per-turn calls depend on how many
  clients are ready at once, so on a loaded machine they are lower for both servers.
- instructions and allocator calls: the server runs under `valgrind --tool=callgrind`; the counts
  are zeroed just before the run (callgrind_control -z) and dumped just after it. Kernel work is
  not in these (the syscalls are).

With --peers N (Lattice only), region a of N + 1 regions (full mesh) takes the writes and every
region runs under callgrind; after the run, the peers' counts are read once both have applied
everything (polled with INFO replication every 0.5 s; those polls are in the peers' counts and
listed), and printed per op applied beside the origin's per op made.

Servers use free ports (or --port-base), are stopped by the PID started, and their data dirs
are removed. Pinned (server CPU 0, client CPU 1) when taskset exists, as scripts/bench does.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import throughput  # noqa: E402
from cpu import CLEAR, CUSTOM  # noqa: E402
from servers import Server, peer_fields, wait_caught_up  # noqa: E402

KEYSPACE = throughput.KEYSPACE
CLIENTS = 50
ALLOCATORS = {"malloc", "calloc", "realloc", "aligned_alloc", "posix_memalign", "memalign",
              "mallocx", "rallocx"}
SHOWN_SYSCALLS = ["read", "write", "epoll_wait", "epoll_ctl", "timerfd_settime", "writev",
                  "sendmsg", "recvfrom", "fdatasync", "futex"]
PINNED = shutil.which("taskset") is not None
KEEP = {"dir": None, "run": ""}  # --keep: where the callgrind dumps are copied, and the test


class CallgrindServer(Server):
    """A Server whose process runs under callgrind, its output file in its own directory."""

    def command_line(self):
        line = super().command_line()
        split = line.index(self.binary)  # after nice and taskset, when pinned
        self.out_pattern = os.path.join(self.dir, "callgrind.out.%p")
        return line[:split] + ["valgrind", "--tool=callgrind",
                               f"--callgrind-out-file={self.out_pattern}"] + line[split:]

    def zero(self):
        subprocess.run(["callgrind_control", "-z", str(self.proc.pid)], check=True,
                       capture_output=True, timeout=120)

    def dump(self):
        """Dumps the counts since zero(); returns (instructions, allocator calls, calls by
        allocator function)."""
        before = set(glob.glob(os.path.join(self.dir, "callgrind.out.*.*")))
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], check=True,
                       capture_output=True, timeout=300)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = set(glob.glob(os.path.join(self.dir, "callgrind.out.*.*"))) - before
            if new:
                path = max(new, key=os.path.getmtime)
                counts = parse_callgrind(path)
                if counts is not None:
                    if KEEP["dir"]:
                        shutil.copy(path, os.path.join(KEEP["dir"], f"{self.label}.{KEEP['run']}"
                                                       .replace(" ", "_")))
                    return counts
            time.sleep(0.1)
        raise RuntimeError(f"no callgrind dump from {self.label}")


def parse_callgrind(path):
    """(total Ir, allocator calls, {function: calls}) from a callgrind dump; None while the file
    is still being written (no totals line yet). Names are compressed: "(id) name" the first
    time, "(id)" after, one id space for fn= and cfn=."""
    total = None
    calls = {}
    callee = None
    names = {}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn=") or line.startswith("cfn="):
                ref = line.split("=", 1)[1].strip()
                match = re.match(r"\((\d+)\)\s*(.*)", ref)
                if match and match.group(2):
                    names[match.group(1)] = match.group(2).split("'")[0]
                name = names.get(match.group(1), "") if match else ref.split("'")[0]
                if line.startswith("cfn="):
                    callee = name
            elif line.startswith("calls=") and (callee in ALLOCATORS or
                                                callee.startswith("operator new")):
                calls[callee] = calls.get(callee, 0) + int(line[6:].split()[0])
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        return None
    return total, sum(calls.values()), calls


def benchmark_command(port, test, pipeline, n):
    """redis-benchmark's own test, or cpu.py's custom command for those it lacks (XADD...)."""
    pin = ["taskset", "-c", "1"] if PINNED else []
    what = CUSTOM[test] if test in CUSTOM else ["-t", test.lower()]
    return pin + ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(CLIENTS),
                  "-P", str(pipeline), "-n", str(n), "-r", str(KEYSPACE), "-d", "16", "-q"] + what


def run_benchmark(port, test, pipeline, n, timeout=1800):
    done = subprocess.run(benchmark_command(port, test, pipeline, n), capture_output=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"redis-benchmark {test} failed: {done.stderr[-300:]!r}")


def prepare(server, test):
    if test in CLEAR:
        subprocess.run(["redis-cli", "-p", str(server.port)] + CLEAR[test],
                       stdout=subprocess.DEVNULL, check=True, timeout=60)
    elif test in ("GET", "SET"):
        throughput.preload(server.port, 16)
    elif test.lower() in throughput.COLLECTION_KEYS:
        subprocess.run(["redis-cli", "-p", str(server.port), "del",
                        throughput.COLLECTION_KEYS[test.lower()]], stdout=subprocess.DEVNULL,
                       check=True, timeout=60)


def perf_syscalls(pid, command, timeout=1800):
    """{syscall: count} over `command`, for every thread of process pid."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".perf") as out:
        done = subprocess.run(["perf", "stat", "-x", ",", "-o", out.name, "-e",
                               "syscalls:sys_enter_*", "-p", str(pid), "--"] + command,
                              capture_output=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"perf stat failed: {done.stderr[-300:]!r}")
        counts = {}
        for line in out.read().splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[0].isdigit() and int(fields[0]) > 0:
                counts[fields[2].replace("syscalls:sys_enter_", "")] = int(fields[0])
        return counts


def start(kind, binary, callgrind, port=None, args=()):
    cls = CallgrindServer if callgrind else Server
    server = cls(kind, binary, list(args), cpus="0" if PINNED else None, port=port,
                 label=f"{kind}{' (callgrind)' if callgrind else ''}")
    server.start(timeout=120 if callgrind else 15)
    return server


def next_port(state):
    if state["base"] == 0:
        return None
    state["base"] += 1
    return state["base"]


def warm_up(server, test, pipeline, n):
    """Loads the server, runs n requests of the test, and loads it again for the measured run."""
    prepare(server, test)
    run_benchmark(server.port, test, pipeline, n)
    prepare(server, test)


def measure_syscalls(kind, binary, test, pipeline, n, ports):
    server = start(kind, binary, False, next_port(ports))
    try:
        warm_up(server, test, pipeline, max(n // 4, 1000))
        counts = perf_syscalls(server.proc.pid, benchmark_command(server.port, test, pipeline, n))
    finally:
        server.cleanup()
    return {name: count / n for name, count in counts.items()}


def measure_callgrind(kind, binary, test, pipeline, n, ports):
    server = start(kind, binary, True, next_port(ports))
    try:
        warm_up(server, test, pipeline, max(n // 10, 500))
        server.zero()
        run_benchmark(server.port, test, pipeline, n)
        instructions, allocs, by_function = server.dump()
    finally:
        server.cleanup()
    return {"instructions": instructions / n, "allocs": allocs / n,
            "allocs_by_function": {k: v / n for k, v in by_function.items()}}


def measure_peers(binary, test, pipeline, n, peers, ports):
    """Region a takes the writes; every region runs under callgrind. Origin's counts per op made
    and each peer's per op applied."""
    from servers import start_lattice_regions
    count = peers + 1
    regions = []
    names = [chr(ord("a") + i) for i in range(count)]
    port_list = [next_port(ports) for _ in range(count)]
    if port_list[0] is None:
        from harness import free_port
        port_list = [free_port() for _ in range(count)]
    try:
        for i in range(count):
            args = ["--region", names[i]]
            for j in range(count):
                if i != j:
                    args += ["--peer", f"127.0.0.1:{port_list[j] + 10000}"]
            regions.append(CallgrindServer("lattice", binary, args,
                                           cpus=("0" if i == 0 else "1") if PINNED else None,
                                           port=port_list[i], label=f"lattice region {names[i]}"))
        for region in regions:
            region.start(timeout=120)
        if not wait_caught_up(regions, timeout=120):
            raise RuntimeError("regions did not connect")
        warm_up(regions[0], test, pipeline, max(n // 10, 500))
        if not wait_caught_up(regions, timeout=600):
            raise RuntimeError("regions did not catch up after the warm-up")
        for region in regions:
            region.zero()
        run_benchmark(regions[0].port, test, pipeline, n)
        origin = regions[0].dump()
        polls = 0
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline:
            polls += 1
            if all(int(p.get("lag_ops", "1")) == 0 and p.get("state") == "connected"
                   for r in regions for p in peer_fields(r)):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("peers did not catch up")
        result = {"origin": {"instructions": origin[0] / n, "allocs": origin[1] / n},
                  "peers": [], "polls": polls}
        for region in regions[1:]:
            counts = region.dump()
            result["peers"].append({"instructions": counts[0] / n, "allocs": counts[1] / n})
        return result
    finally:
        for region in regions:
            region.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lattice", default=os.path.join(ROOT, "build", "bin", "lattice-server"))
    parser.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--tests", default="GET,SET,INCR,HSET,SADD,ZADD")
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--n", type=int, default=50000, help="requests per syscall run")
    parser.add_argument("--callgrind-n", type=int, default=10000,
                        help="requests per callgrind run")
    parser.add_argument("--servers", default="redis,lattice")
    parser.add_argument("--skip", default="", help="syscalls,callgrind: phases to leave out")
    parser.add_argument("--peers", type=int, default=0,
                        help="N > 0: Lattice origin with N peers under callgrind instead")
    parser.add_argument("--port-base", type=int, default=0,
                        help="ports from here up (default: free ports)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--keep", help="copy the callgrind dumps into this directory "
                        "(for callgrind_annotate)")
    args = parser.parse_args()
    ports = {"base": args.port_base}
    binaries = {"redis": args.redis, "lattice": args.lattice}
    tests = [t.strip().upper() for t in args.tests.split(",") if t.strip()]
    skip = set(args.skip.split(","))
    results = {}
    KEEP["dir"] = args.keep
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    for test in tests:
        KEEP["run"] = f"{test}.P{args.pipeline}"
        if args.peers:
            got = measure_peers(args.lattice, test, args.pipeline, args.callgrind_n, args.peers,
                                ports)
            results[test] = got
            peers = ", ".join(f"{p['instructions']:.0f} Ir {p['allocs']:.1f} allocs"
                              for p in got["peers"])
            print(f"{test} -P{args.pipeline} origin {got['origin']['instructions']:.0f} Ir "
                  f"{got['origin']['allocs']:.1f} allocs per op; peers per op applied: {peers} "
                  f"({got['polls']} INFO polls)", flush=True)
            continue
        for kind in args.servers.split(","):
            row = {}
            if "syscalls" not in skip:
                row["syscalls"] = measure_syscalls(kind, binaries[kind], test, args.pipeline,
                                                   args.n, ports)
            if "callgrind" not in skip:
                row.update(measure_callgrind(kind, binaries[kind], test, args.pipeline,
                                             args.callgrind_n, ports))
            results.setdefault(test, {})[kind] = row
            print_row(test, args.pipeline, kind, row)
        print_ratio(test, results[test])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


def print_row(test, pipeline, kind, row):
    parts = [f"{test} -P{pipeline} {kind:<8}"]
    if "instructions" in row:
        parts.append(f"{row['instructions']:8.0f} Ir/req {row['allocs']:5.1f} allocs/req")
    if "syscalls" in row:
        calls = row["syscalls"]
        total = sum(calls.values())
        named = " ".join(f"{name}={calls[name]:.3f}" for name in SHOWN_SYSCALLS if name in calls)
        other = {k: v for k, v in calls.items() if k not in SHOWN_SYSCALLS and v >= 0.001}
        rest = " ".join(f"{k}={v:.3f}" for k, v in sorted(other.items(), key=lambda kv: -kv[1]))
        parts.append(f"syscalls/req {total:.3f}: {named} {rest}".rstrip())
    print("  ".join(parts), flush=True)


def print_ratio(test, per):
    if "redis" not in per or "lattice" not in per:
        return
    r, l = per["redis"], per["lattice"]
    parts = [f"{test} lattice/redis:"]
    if "instructions" in r and "instructions" in l:
        parts.append(f"Ir {l['instructions'] / r['instructions']:.2f}x")
        parts.append(f"allocs {l['allocs']:.1f} vs {r['allocs']:.1f}")
    if "syscalls" in r and "syscalls" in l:
        parts.append(f"syscalls {sum(l['syscalls'].values()) / sum(r['syscalls'].values()):.2f}x")
    print(" ".join(parts), flush=True)


if __name__ == "__main__":
    main()
