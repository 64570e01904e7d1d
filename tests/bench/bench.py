#!/usr/bin/env python3
"""Lattice side by side with redis-server on this machine: CPU per request, memory, replication.

Run through scripts/bench. Phases: the proxy self-check, cpu (cpu.py: server CPU time per
request and throughput), perf profiles of SET (and in a full run HSET, SADD, ZADD) at -P16
(profile_worst.py, when perf works here), memory (memory.py), replication (replication.py); the
older alternating-rounds throughput phase (throughput.py) and the churn phase (churn.py: memory
after deleted and expired counters, issue #17) and the import phase (import_bench.py: 1M keys
from an RDB file and from a live primary, replication lag at 10k writes/s, issue #23) run only
when named in --only.
Writes results.json, the plots and a summary to --out; a full run also rewrites the generated
part of docs/benchmarks.md and docs/benchmarks/*.png. --compare OLD.json prints, beside this
run's ratios, those of an earlier run (e.g. the code before a change).
Usage: bench.py [--quick] [--only cpu,profile,memory,replication,throughput] [--out DIR]
                [--no-docs] [--lattice BINARY] [--compare results.json]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import churn  # noqa: E402
import cpu  # noqa: E402
import import_bench  # noqa: E402
import memory  # noqa: E402
import profile_worst  # noqa: E402
import pubsub_fanout  # noqa: E402
import replication  # noqa: E402
import report  # noqa: E402
import throughput  # noqa: E402

FULL = {
    "rounds": 3, "n": {1: 20000, 16: 100000, "collection": 1000}, "cap_s": 15.0,
    "cpu": {"rounds": 1, "n": {16: 200000, 1: 50000}, "n_collection": {16: 20000, 1: 10000}},
    "profile": [("set", 16), ("hset", 16), ("sadd", 16), ("zadd", 16)],
    "memory": {"string_keys": 1000000, "collection_keys": 100, "elements": 1000,
               "small_keys": 10000, "small_elements": 10},
    "replication": {"delay_ms": 50, "jitter_ms": 5, "rate": 1000, "lag_s": 15,
                    "redis_lag_s": 10, "bytes_ops": 2000, "partition_s": 60,
                    "lagging_ops": 50000},
    "pubsub": {"messages": 20000, "subscribers": 50, "size": 32},
    "churn": {"baseline_keys": 100000, "windows": 6, "per_window": 10000, "ttl_ms": 100,
              "quiet_s": 120},
    "import": {"keys": 1000000, "rate": 10000, "lag_s": 30},
}
QUICK = {
    "rounds": 1, "n": {1: 10000, 16: 50000, "collection": 500}, "cap_s": 5.0,
    "cpu": {"rounds": 1, "n": {16: 50000, 1: 10000}, "n_collection": {16: 10000, 1: 5000}},
    "profile": [("set", 16)],
    "memory": {"string_keys": 100000, "collection_keys": 10, "elements": 1000,
               "small_keys": 1000, "small_elements": 10},
    "replication": {"delay_ms": 50, "jitter_ms": 5, "rate": 1000, "lag_s": 3,
                    "redis_lag_s": 2, "bytes_ops": 300, "partition_s": 5,
                    "lagging_ops": 5000},
    "pubsub": {"messages": 5000, "subscribers": 50, "size": 32},
    "churn": {"baseline_keys": 20000, "windows": 2, "per_window": 2000, "ttl_ms": 100,
              "quiet_s": 60},
    "import": {"keys": 100000, "rate": 10000, "lag_s": 5},
}


def machine(lattice_binary):
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.strip()
    # The commit of the tree the binary was built in (a build dir inside a work tree).
    tree = os.path.dirname(os.path.abspath(lattice_binary))
    commit = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "redis": redis_version, "lattice_binary": lattice_binary,
            "commit": commit + (" (the work tree had uncommitted changes)" if dirty else ""),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "load_start": os.getloadavg()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every phase")
    parser.add_argument("--only", default="cpu,profile,memory,replication,pubsub")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    parser.add_argument("--lattice", default=os.environ.get(
        "LATTICE_SERVER", os.path.join(ROOT, "build", "bin", "lattice-server")))
    parser.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--compare", help="an earlier results.json to print beside this run")
    parser.add_argument("--cpu-pipelines", default="16,1", help="the cpu phase's -P values")
    parser.add_argument("--cpu-scale", type=float, default=1.0,
                        help="multiplies the cpu phase's request counts (a loaded machine)")
    args = parser.parse_args()
    # A SIGTERM (timeout, kill) unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench.py: terminated"))
    plan = QUICK if args.quick else FULL
    phases = set(args.only.split(","))
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()

    def log(message):
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    check = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "delay_proxy.py"),
                            "--self-test"], capture_output=True, text=True, timeout=60)
    log(check.stdout.strip())
    if check.returncode != 0:
        sys.exit("the delaying proxy failed its self-check")
    results = {"mode": "quick" if args.quick else "full", "machine": machine(args.lattice), "plan": plan}
    if "cpu" in phases:
        plan["cpu"] = {**plan["cpu"], "pipelines": [int(p) for p in args.cpu_pipelines.split(",")],
                       "scale": args.cpu_scale}
        results["cpu"] = cpu.run(args.lattice, args.redis, plan["cpu"], log)
    if "profile" in phases:
        results["profiles"] = profile_worst.run_tests(args.lattice, plan["profile"], log)
    if "throughput" in phases:
        results["throughput"] = throughput.run(args.lattice, args.redis, plan["rounds"],
                                               (plan["n"], plan["cap_s"]), log)
        results["profile"] = profile_worst.run(args.lattice, results["throughput"], plan, log)
    if "memory" in phases:
        results["memory"] = memory.run(args.lattice, args.redis, log=log, **plan["memory"])
    if "replication" in phases:
        results["replication"] = replication.run(args.lattice, args.redis,
                                                 plan["replication"], log)
    if "pubsub" in phases:
        results["pubsub"] = pubsub_fanout.run_both(args.lattice, args.redis, plan["pubsub"], log)
    if "churn" in phases:  # only when named: not a comparison with Redis
        results["churn"] = churn.run(args.lattice, plan["churn"], log)
    if "import" in phases:  # only when named: issue #23's import times and lag
        results["import"] = import_bench.run(args.lattice, args.redis, plan["import"], args.out,
                                             log)
    results["machine"]["load_end"] = os.getloadavg()
    results["elapsed_s"] = time.monotonic() - started
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_docs = not args.quick and not args.no_docs
    earlier = None
    if args.compare:
        with open(args.compare) as f:
            earlier = json.load(f)
    report.write(results, args.out, os.path.join(ROOT, "docs") if write_docs else None, log,
                 earlier)
    print(report.ratio_table(results, earlier), flush=True)
    log(f"done in {results['elapsed_s'] / 60:.1f} min; results in {args.out}")


if __name__ == "__main__":
    main()
