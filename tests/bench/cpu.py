"""Server CPU time per request: the figure that does not depend on how busy this shared machine
is. Every target is pinned to CPU 0 and redis-benchmark to CPU 1; the server's CPU time is read
before and after a run of exactly `n` requests, and the difference divided by n. It is the
scheduler's run time of every thread (/proc/PID/task/*/schedstat, nanoseconds; user and system
time together), not utime + stime from /proc/PID/stat, which count 10 ms clock ticks and so move
in 0.5 us steps per request on a short run; when a thread started or ended during the run (its
time would be missed), that run falls back to the tick counts. Throughput (redis-benchmark's own figure) is kept
beside it, but on a loaded 2-core machine it is the noisier of the two.

Targets: redis-server (appendonly yes, appendfsync everysec), Lattice standalone, and region a of
three Lattice regions (full mesh; the peers b and c share CPU 1 with the client), the latter for
the writes at -P 16 only, with as many requests as standalone: the peers' CPU time per applied op is
read too, after both have caught up (applying is part of the cost of a write), and on this
2-core machine they apply slowly. Tests: GET, SET, INCR, EVALSHA of a script doing one SET (keys
from -r 100000), HSET, SADD, ZADD
(redis-benchmark's single-key tests, the key deleted before every run, n_collection requests:
Lattice's cost per op grows with the collection), at -P 16 and -P 1, 50 clients. Targets take
turns per test, and the first target rotates per round; the figure is the median of the rounds.
"""
import hashlib
import os
import statistics
import subprocess
import time

import throughput
from servers import PRIORITY, wait_caught_up
from throughput import COLLECTION_KEYS, FINAL, KEYSPACE, PEERS, preload

CLIENTS = 50
TESTS = ["GET", "SET", "INCR", "HSET", "SADD", "ZADD", "LPUSH", "RPUSH", "LPOP", "RPOP",
         "LRANGE_100", "EVALSHA", "GEOADD", "PFADD", "SETBIT", "XADD"]
WRITES = {"SET", "INCR", "HSET", "SADD", "ZADD", "LPUSH", "RPUSH", "LPOP", "RPOP", "EVALSHA",
          "GEOADD", "PFADD", "SETBIT", "XADD"}
# Tests redis-benchmark runs as custom commands, each on its own keys, deleted before each run.
# GEOADD: one fixed position per random member of "mygeo" (a ZADD of a computed geohash).
# PFADD: random elements into one HyperLogLog ("myhll", dense after ~2,000 adds, 12 KB).
# SETBIT: the last bit of random 512-byte bitmaps ("bm:<n>"; an offset cannot be random, as
# __rand_int__ is zero-padded and Valkey refuses such an offset).
# XADD: "XADD mystream * f <16 bytes>" on one key (redis-benchmark has no stream test).
CUSTOM = {"GEOADD": ["GEOADD", "mygeo", "13.361389", "38.115556", "member:__rand_int__"],
          "PFADD": ["PFADD", "myhll", "ele:__rand_int__"],
          "SETBIT": ["SETBIT", "bm:__rand_int__", "4095", "1"],
          "XADD": ["XADD", "mystream", "*", "f", "xxxxxxxxxxxxxxxx"]}
CLEAR = {"GEOADD": ["del", "mygeo"],
         "XADD": ["del", "mystream"],
         "PFADD": ["del", "myhll"],
         "SETBIT": ["eval", "for _, k in ipairs(redis.call('keys', 'bm:*')) do "
                    "redis.call('del', k) end", "0"]}
# EVALSHA: a script doing one SET (what redis-py's Lock and most client-library scripts cost),
# loaded with SCRIPT LOAD before every run, on the keys SET uses.
SCRIPT = "return redis.call('set', KEYS[1], ARGV[1])"
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
# The list tests all use redis-benchmark's key "mylist": LPUSH/RPUSH start from an empty list;
# LPOP/RPOP pop from a list filled first (unmeasured) with n elements, so every pop finds one;
# LRANGE_100 is redis-benchmark's own pair, n LPUSHes then n LRANGE 0 99, both measured (the
# figure is their mean).
LIST_KEY = "mylist"
# LATTICE_BENCH_CPU_TESTS=LPUSH,LPOP runs only those tests (a quick look at one family).
if os.environ.get("LATTICE_BENCH_CPU_TESTS"):
    TESTS = [t for t in os.environ["LATTICE_BENCH_CPU_TESTS"].upper().split(",") if t]
FILLED_FIRST = {"LPOP", "RPOP"}
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def tick_seconds(pid):
    """utime + stime of the whole process (every thread, ended ones included), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S  # fields 14 and 15 of proc(5)


def cpu_sample(pid):
    """(run time of each live thread in ns by thread id, tick seconds) of process pid."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                threads[tid] = int(f.read().split()[0])
        except FileNotFoundError:  # the thread ended while we listed
            pass
    return threads, tick_seconds(pid)


def cpu_seconds_between(before, after):
    """CPU seconds between two cpu_samples: nanosecond run times when the same threads lived
    through the interval, else the tick counts."""
    if before[0].keys() == after[0].keys():
        return sum(after[0][t] - before[0][t] for t in after[0]) / 1e9
    return after[1] - before[1]


def benchmark(port, test, pipeline, n):
    """One redis-benchmark run of exactly n requests pinned to CPU 1; returns requests/s."""
    command = PRIORITY + ["taskset", "-c", "1", "redis-benchmark", "-h", "127.0.0.1", "-p",
                          str(port), "-c", str(CLIENTS), "-P", str(pipeline), "-n", str(n),
                          "-r", str(KEYSPACE), "-d", "16", "-q"]
    if test == "EVALSHA":
        command += ["EVALSHA", SCRIPT_SHA, "1", "key:__rand_int__", "xxxxxxxxxxxxxxxx"]
    elif test in CUSTOM:
        command += CUSTOM[test]
    else:
        command += ["-t", test.lower()]
    done = subprocess.run(command, capture_output=True, timeout=600)
    text = done.stdout.decode(errors="replace").replace("\r", "\n")
    final = FINAL.findall(text)
    if done.returncode != 0 or not final:
        raise RuntimeError(f"redis-benchmark {test} failed (exit {done.returncode}): "
                           f"{text.strip()[-500:]} {done.stderr.decode(errors='replace')[-300:]}")
    return float(final[-1])


class Targets(throughput.Targets):
    """throughput.py's three targets, by name."""

    def __init__(self, lattice_binary, redis_binary):
        super().__init__(lattice_binary, redis_binary)
        self.servers = {"redis": self.redis, "lattice": self.lattice, PEERS: self.regions[0]}

    def prepare(self, name, test):
        port = self.servers[name].port
        if test in ("GET", "SET"):
            # The GETs hit: every key -r can draw holds a 16-byte value (loaded once). SET
            # overwrites those keys on every target: the standalone ones were loaded for GET, and
            # the origin with peers (GET is not run with peers) is loaded here, so both SET figures
            # measure the same work, not inserts against overwrites.
            if not getattr(self.servers[name], "preloaded", False):
                preload(port, 16)
                self.servers[name].preloaded = True
        elif test.lower() in COLLECTION_KEYS:
            subprocess.run(["redis-cli", "-p", str(port), "del", COLLECTION_KEYS[test.lower()]],
                           stdout=subprocess.DEVNULL, check=True, timeout=60)
        elif test in LIST_TESTS or test in CUSTOM:
            subprocess.run(["redis-cli", "-p", str(port)] + CLEAR.get(test, ["del", LIST_KEY]),
                           stdout=subprocess.DEVNULL, check=True, timeout=60)
        elif test == "EVALSHA":
            subprocess.run(["redis-cli", "-p", str(port), "script", "load", SCRIPT],
                           stdout=subprocess.DEVNULL, check=True, timeout=60)
        if name == PEERS:
            wait_caught_up(self.regions, timeout=60)

LIST_TESTS = {"LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE_100"}


def one_run(targets, name, test, pipeline, n):
    targets.prepare(name, test)
    server = targets.servers[name]
    if test in FILLED_FIRST:
        benchmark(server.port, "LPUSH", pipeline, n)
        if name == PEERS:
            wait_caught_up(targets.regions, timeout=120)
    watched = [server] + (targets.regions[1:] if name == PEERS else [])
    before = [cpu_sample(s.proc.pid) for s in watched]
    rps = benchmark(server.port, test, pipeline, n)
    origin_s = cpu_seconds_between(before[0], cpu_sample(server.proc.pid))
    result = {"rps": rps, "cpu_us": origin_s / n * 1e6}
    if name == PEERS:
        # The peers apply after the origin acknowledged: wait until they are done.
        caught = wait_caught_up(targets.regions, timeout=120)
        peer_s = [cpu_seconds_between(b, cpu_sample(s.proc.pid))
                  for s, b in zip(watched[1:], before[1:])]
        result["peer_cpu_us"] = statistics.mean(peer_s) / n * 1e6
        result["peers_caught_up"] = caught
    return result


def run(lattice_binary, redis_binary, plan, log):
    """Returns {"P16": {test: {target: {"rps", "cpu_us"[, "peer_cpu_us"]}, "runs": ...}}, ...}."""
    targets = Targets(lattice_binary, redis_binary)
    names = list(targets.servers)
    runs = {}
    try:
        for round_index in range(plan["rounds"]):
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for pipeline in plan.get("pipelines", (16, 1)):
                for test in TESTS:
                    for name in order:
                        if name == PEERS and (pipeline != 16 or test not in WRITES):
                            continue
                        # The origin with peers runs as many requests as standalone, so both
                        # figures cover the same workload (a short run's fixed costs, warm-up
                        # and the peers' catch-up start weigh on a few thousand requests).
                        n = (plan["n_collection"][pipeline]
                             if test.lower() in COLLECTION_KEYS or test in LIST_TESTS
                             or test in ("GEOADD", "XADD")
                             else plan["n"][pipeline])
                        n = int(n * plan.get("scale", 1.0))
                        result = one_run(targets, name, test, pipeline, n)
                        runs.setdefault(f"P{pipeline}", {}).setdefault(test, {}).setdefault(
                            name, []).append(result)
                        peer = (f", peers {result['peer_cpu_us']:.2f} us/op"
                                if "peer_cpu_us" in result else "")
                        log(f"cpu round {round_index + 1}/{plan['rounds']} {test:<4} "
                            f"-P{pipeline:<2} {name:<16} {result['cpu_us']:7.2f} us/req "
                            f"{result['rps']:>10.0f} req/s{peer}")
    finally:
        targets.stop()
    out = {}
    for pipeline, tests in runs.items():
        for test, per in tests.items():
            entry = out.setdefault(pipeline, {}).setdefault(test, {"runs": per})
            for name, results in per.items():
                entry[name] = {key: statistics.median(r[key] for r in results)
                               for key in ("rps", "cpu_us", "peer_cpu_us") if key in results[0]}
    return out
