"""A perf profile of Lattice on the throughput test with the worst standalone ratio: a fresh
pinned Lattice, redis-benchmark on that test, `perf record` of the server for a few seconds, and
the top symbols (self time) from `perf report`. Skipped, with the reason, when perf does not
work here."""
import re
import shutil
import subprocess
import tempfile
import time

import throughput
from servers import Server

RECORD_S = 5


def perf_works():
    if not shutil.which("perf"):
        return False
    done = subprocess.run(["perf", "stat", "-e", "task-clock", "true"], capture_output=True)
    return done.returncode == 0


def worst(results):
    ratios = [(per["lattice"] / per["redis"], name) for name, per in results.items()
              if per.get("redis")]
    return min(ratios) if ratios else (None, None)


def short_symbol(symbol):
    """Template arguments and parameter lists removed: readable in a table."""
    previous = None
    while previous != symbol:
        previous = symbol
        symbol = re.sub(r"<[^<>]*>", "", symbol)
    return re.sub(r"\([^()]*\)", "()", symbol).strip()


def top_symbols(perf_data, limit=10):
    done = subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--stdio",
                           "--sort", "symbol", "-g", "none", "--percent-limit", "1"],
                          capture_output=True, text=True, timeout=120)
    rows = []
    for line in done.stdout.splitlines():
        match = re.match(r"\s*([0-9.]+)%\s+\[[.k]\]\s+(.*)", line)
        if match:
            rows.append((float(match.group(1)), short_symbol(match.group(2)).strip()[:100]))
    return rows[:limit]


def record(lattice_binary, test, pipeline, seconds=RECORD_S, size=16, limit=15):
    """`perf record` of a fresh pinned Lattice under redis-benchmark `test` at -P `pipeline`
    ("mixed": its SETs, over preloaded keys); returns the top symbols by self time."""
    server = Server("lattice", lattice_binary, cpus="0", label="lattice profile").start()
    tmp = tempfile.mkdtemp(prefix="lattice-bench-perf-")
    try:
        if test in ("get", "mixed"):
            throughput.preload(server.port, size)
        runner = subprocess.Popen(
            ["taskset", "-c", "1", "redis-benchmark", "-p", str(server.port), "-c", "50",
             "-P", str(pipeline), "-n", "100000000", "-r", str(throughput.KEYSPACE),
             "-d", str(size), "-t", "set" if test == "mixed" else test, "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        perf_data = f"{tmp}/perf.data"
        subprocess.run(["perf", "record", "-F", "999", "-p", str(server.proc.pid), "-o",
                        perf_data, "--", "sleep", str(seconds)], capture_output=True,
                       timeout=seconds + 60)
        runner.terminate()
        runner.wait(timeout=10)
        return top_symbols(perf_data, limit=limit)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run_tests(lattice_binary, tests, log):
    """Profiles of the given (redis-benchmark test, pipeline) pairs: {"SET -P16": rows}."""
    if not perf_works():
        log("profile: skipped (perf is not installed or not permitted here)")
        return {"skipped": "perf is not installed or not permitted here"}
    out = {"seconds": RECORD_S, "tests": {}}
    for test, pipeline in tests:
        name = f"{test.upper()} -P{pipeline}"
        rows = record(lattice_binary, test, pipeline)
        out["tests"][name] = rows
        log(f"profile of {name}: " + "; ".join(f"{pct:.1f}% {sym}" for pct, sym in rows[:5]))
    return out


def run(lattice_binary, results, plan, log):
    ratio, name = worst(results)
    if name is None:
        return {"skipped": "no throughput results"}
    if not perf_works():
        log("profile: skipped (perf is not installed or not permitted here)")
        return {"skipped": "perf is not installed or not permitted here", "test": name}
    test, size, pipeline = (results[name][k] for k in ("test", "size", "pipeline"))
    rows = record(lattice_binary, test, pipeline, size=size or 16, limit=10)
    log(f"profile of {name} (ratio {ratio:.3f}): " +
        "; ".join(f"{pct:.1f}% {sym}" for pct, sym in rows[:5]))
    return {"test": name, "ratio": ratio, "seconds": RECORD_S, "top": rows}
