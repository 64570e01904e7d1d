"""Throughput: redis-benchmark against redis-server, Lattice standalone and Lattice with two live
peer regions, in alternating order (the first target rotates every round), median of the rounds.

Every server is pinned to CPU 0 (Lattice's two peer regions to CPU 1, with the client: the two
cores are all this machine has), redis-benchmark to CPU 1. 50 clients, -P 1 and -P 16, -r 100000
keys. The single-key tests (HSET, SADD, ZADD on myhash, myset, myzset) start from an empty key
every run and send fewer requests (n["collection"]): Lattice's cost per op grows with the size of
the collection, so their rate depends on n, which is the same for both servers. After every run against Lattice with peers, the next run waits (up to SETTLE_S) until
both peers have applied everything, since they share the client's core. A run stops after `n` requests or `cap_s` seconds, whichever comes first; the rate is
redis-benchmark's own (its final figure, or its last "overall" progress figure when capped).
"""
import re
import statistics
import subprocess

from servers import PRIORITY, Server, start_lattice_regions, wait_caught_up

KEYSPACE = 100000
CLIENTS = 50
PEERS = "lattice+2 peers"
SETTLE_S = 10.0
# (label, redis-benchmark test, value bytes or None when the test sends no value of that size)
TESTS = [
    ("SET", "set", 16), ("SET", "set", 512),
    ("GET", "get", 16), ("GET", "get", 512),
    ("INCR", "incr", None),
    ("HSET", "hset", 16), ("HSET", "hset", 512),
    ("SADD", "sadd", None), ("ZADD", "zadd", None),
    ("MIXED", "mixed", 16), ("MIXED", "mixed", 512),
]
FINAL = re.compile(r"^[A-Z][^\n]*: ([0-9.]+) requests per second", re.M)  # a custom command may hold colons
PROGRESS = re.compile(r"overall: ([0-9.]+)\)")


def test_name(label, size, pipeline):
    return f"{label}{'' if size is None else f' {size}B'} -P{pipeline}"


def benchmark(port, test, size, pipeline, n, cap_s, clients=CLIENTS):
    """One redis-benchmark run pinned to CPU 1; returns requests per second."""
    command = PRIORITY + ["taskset", "-c", "1", "redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
               "-c", str(clients), "-P", str(pipeline), "-n", str(n), "-r", str(KEYSPACE),
               "-d", str(size or 16), "-t", test, "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=cap_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    text = out.decode(errors="replace").replace("\r", "\n")
    final = FINAL.findall(text)
    if final:
        return float(final[-1])
    progress = PROGRESS.findall(text)
    if progress:
        return float(progress[-1])
    raise RuntimeError(f"no rate in redis-benchmark output: {text[-500:]}")


def mixed(port, size, pipeline, n, cap_s):
    """Half the clients GET, half SET, at the same time; the sum of the two rates."""
    results = []
    import threading
    threads = [threading.Thread(target=lambda t=t: results.append(
        benchmark(port, t, size, pipeline, n // 2, cap_s, clients=CLIENTS // 2)))
        for t in ("get", "set")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=cap_s + 30)
    if len(results) != 2:
        raise RuntimeError("mixed run did not finish")
    return sum(results)


def preload(port, size):
    """SETs every key redis-benchmark's -r KEYSPACE can draw (key:%012d), so GETs hit."""
    value = b"x" * size
    chunks = []
    for i in range(KEYSPACE):
        key = b"key:%012d" % i
        chunks.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key,
                                                                          len(value), value))
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=b"".join(chunks),
                   stdout=subprocess.DEVNULL, check=True, timeout=120)


COLLECTION_KEYS = {"hset": "myhash", "sadd": "myset", "zadd": "myzset"}


class Targets:
    """The three targets, started once for the whole throughput phase."""

    def __init__(self, lattice_binary, redis_binary):
        self.redis = Server("redis", redis_binary, cpus="0", label="redis-server").start()
        self.lattice = Server("lattice", lattice_binary, cpus="0",
                              label="lattice standalone").start()
        self.regions = []
        try:
            self.regions = start_lattice_regions(lattice_binary, 3, cpus=["0", "1", "1"])
            if not wait_caught_up(self.regions, timeout=20):
                raise RuntimeError("Lattice regions did not connect")
        except BaseException:
            self.stop()
            raise
        self.ports = {"redis": self.redis.port, "lattice": self.lattice.port,
                      PEERS: self.regions[0].port}

    def preload(self, size):
        """Every target gets the same keys (GET and the mixed runs read them)."""
        for name, port in self.ports.items():
            subprocess.run(["redis-cli", "-p", str(port), "flushall"],
                           stdout=subprocess.DEVNULL, check=True, timeout=60)
            preload(port, size)
            self.settle(name)

    def reset(self, name, test):
        """The single-key tests (HSET myhash, ...) start from an empty key every run."""
        if test in COLLECTION_KEYS:
            subprocess.run(["redis-cli", "-p", str(self.ports[name]), "del",
                            COLLECTION_KEYS[test]], stdout=subprocess.DEVNULL, check=True,
                           timeout=60)
            self.settle(name)

    def settle(self, name):
        """The peers finish applying before the next run: they share the client's core."""
        if name == PEERS:
            wait_caught_up(self.regions, timeout=SETTLE_S)

    def stop(self):
        for server in [self.redis, self.lattice, *self.regions]:
            server.cleanup()


def run(lattice_binary, redis_binary, rounds, sizes, log):
    """Returns {test name: {target: median rps, "runs": {target: [rps, ...]}, "test": ...,
    "size": ..., "pipeline": ...}}. Per round, per value size: every target is loaded with the
    keys GET reads, then that size's tests run at -P 1 and -P 16, each on every target in turn
    (the first target rotates every round); the tests without a value size run with 16 B."""
    n_by_pipeline, cap_s = sizes
    targets = Targets(lattice_binary, redis_binary)
    names = list(targets.ports)
    runs = {}
    meta = {}
    try:
        for round_index in range(rounds):
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for load_size in (16, 512):
                targets.preload(load_size)
                for pipeline in (1, 16):
                    for label, test, size in TESTS:
                        if (size or 16) != load_size:
                            continue
                        name = test_name(label, size, pipeline)
                        meta[name] = {"test": test, "size": size, "pipeline": pipeline}
                        for target in order:
                            n = (n_by_pipeline["collection"] if test in COLLECTION_KEYS
                                 else n_by_pipeline[pipeline])
                            rps = one_run(targets, target, test, size, pipeline, n, cap_s)
                            runs.setdefault(name, {}).setdefault(target, []).append(rps)
                            log(f"throughput round {round_index + 1}/{rounds} {name:<18} "
                                f"{target:<16} {rps:>11.0f} req/s")
    finally:
        targets.stop()
    return {name: {**{t: statistics.median(v) for t, v in per.items()}, "runs": per,
                   **meta[name]} for name, per in runs.items()}


def one_run(targets, target, test, size, pipeline, n, cap_s):
    targets.reset(target, test)
    port = targets.ports[target]
    rps = (mixed(port, size, pipeline, n, cap_s) if test == "mixed"
           else benchmark(port, test, size, pipeline, n, cap_s))
    targets.settle(target)
    return rps
