"""Replication over delayed links: lag, bytes on the wire per op, and catch-up after a partition.

Every replication link passes through delay_proxy.py (`delay_ms` one way, uniform jitter of
+-`jitter_ms`, both directions). Lattice: three regions a, b, c of one shard, full mesh, every
--peer pointing at the proxy. The anchor: a redis-server primary and one replica whose link
passes through the same proxy.

Lag is measured from the moment the writer's SET is acknowledged by the region it wrote to (a)
until an observer polling another region (MGET of the next unseen keys, every ~0.5 ms) first
sees the value. Ops from one origin apply in order, so what is visible is a prefix of what was
written. The writer is paced at a fixed rate.
"""
import threading
import time

from servers import (ProxyProcess, Server, free_listen_port, free_port, start_lattice_regions,
                     wait_caught_up)

OBSERVE_WINDOW = 256


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else None


class LagRun:
    """A paced writer on one client and one polling observer per other client (threads)."""

    def __init__(self, writer, observers, prefix, rate, value=b"v" * 16):
        self.writer = writer
        self.observers = observers
        self.prefix = prefix
        self.rate = rate
        self.value = value
        self.acks = []
        self.visible = {name: [] for name in observers}
        self.stopping = threading.Event()
        self.drain_deadline = None
        self.t0 = None
        self.threads = []

    def key(self, i):
        return f"{self.prefix}:{i:08d}"

    def start(self):
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self._write, daemon=True)]
        self.threads += [threading.Thread(target=self._observe, args=(name, client), daemon=True)
                         for name, client in self.observers.items()]
        for thread in self.threads:
            thread.start()

    def _write(self):
        i = 0
        while not self.stopping.is_set():
            self.writer.set(self.key(i), self.value)
            self.acks.append(time.monotonic())
            i += 1
            pause = self.t0 + i / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def _observe(self, name, client):
        seen = self.visible[name]
        while True:
            if self.stopping.is_set() and (len(seen) >= len(self.acks) or
                                           time.monotonic() > self.drain_deadline):
                return
            first = len(seen)
            values = client.mget([self.key(i) for i in range(first, first + OBSERVE_WINDOW)])
            now = time.monotonic()
            prefix = 0
            while prefix < len(values) and values[prefix] is not None:
                prefix += 1
            seen.extend([now] * prefix)
            if prefix == 0:
                time.sleep(0.0005)

    def stop(self, drain_s=30.0):
        self.drain_deadline = time.monotonic() + drain_s
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=drain_s + 10)

    def series(self, name):
        """[(seconds since start at ack, lag ms)] for every op acknowledged and seen."""
        seen = self.visible[name]
        return [(ack - self.t0, max(0.0, (vis - ack) * 1000.0))
                for ack, vis in zip(self.acks, seen)]


WARMUP_S = 1.0  # the first second's writes are left out of the percentiles (connection warm-up)


def lag_summary(run, name):
    lags = [lag for t, lag in run.series(name) if t >= WARMUP_S]
    return {"ops": len(run.acks), "seen": len(lags), "p50_ms": percentile(lags, 0.50),
            "p99_ms": percentile(lags, 0.99), "max_ms": max(lags) if lags else None}


def paced(count, rate, op):
    started = time.monotonic()
    for i in range(count):
        op(i)
        pause = started + (i + 1) / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)


COMMANDS = {
    "SET": lambda c, i: c.set(f"key:{i:08d}", b"v" * 16),
    "INCR": lambda c, i: c.incr(f"counter:{i % 1000:04d}"),
    "HSET": lambda c, i: c.hset(f"hash:{i % 100:03d}", f"field:{i:08d}", b"v" * 16),
    "SADD": lambda c, i: c.sadd(f"set:{i % 100:03d}", f"member:{i:08d}"),
    "ZADD": lambda c, i: c.zadd(f"zset:{i % 100:03d}", {f"member:{i:08d}": i}),
}


def link_bytes(stats, src, dst):
    """Bytes that flowed from src to dst over either route of the pair (one survives)."""
    return (stats.get(f"{src}>{dst}", {}).get("up", 0) +
            stats.get(f"{dst}>{src}", {}).get("down", 0))


def total_bytes(stats):
    return sum(route["up"] + route["down"] for route in stats.values())


class LatticeMesh:
    """Three regions whose every link passes through the proxy."""

    def __init__(self, binary, delay_ms, jitter_ms):
        names = ["a", "b", "c"]
        ports = [free_port() for _ in names]
        self.listen = {(i, j): free_listen_port() for i in range(3) for j in range(3) if i != j}
        routes = [(f"{names[i]}>{names[j]}", port, ports[j] + 10000)
                  for (i, j), port in self.listen.items()]
        self.proxy = ProxyProcess(routes, delay_ms, jitter_ms)
        self.regions = start_lattice_regions(
            binary, 3, cpus=[None] * 3, ports=ports,
            peer_address=lambda i, j: f"127.0.0.1:{self.listen[(i, j)]}")
        if not wait_caught_up(self.regions, timeout=30):
            raise RuntimeError("Lattice regions did not connect through the proxy")

    def stop(self):
        for region in self.regions:
            region.cleanup()
        self.proxy.stop()


class RedisPair:
    """A redis-server primary and a replica that reaches it through the proxy."""

    def __init__(self, binary, delay_ms, jitter_ms):
        self.primary = Server("redis", binary, label="redis primary").start()
        listen = free_listen_port()
        self.proxy = ProxyProcess([("replica>primary", listen, self.primary.port)], delay_ms,
                                  jitter_ms)
        self.replica = Server("redis", binary, ["--replicaof", "127.0.0.1", str(listen)],
                              label="redis replica").start()
        from servers import wait_until
        wait_until(lambda: self.replica.info("replication").get("master_link_status") == "up",
                   timeout=30, what="redis replica link up")

    def offsets(self):
        return (int(self.primary.info("replication")["master_repl_offset"]),
                int(self.replica.info("replication")["master_repl_offset"]))

    def wait_synced(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            primary, replica = self.offsets()
            if primary == replica:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.replica.cleanup()
        self.proxy.stop()
        self.primary.cleanup()


def lattice_bytes_per_op(mesh, count, rate):
    a = mesh.regions[0].client()
    out = {}
    for name, op in COMMANDS.items():
        wait_caught_up(mesh.regions, timeout=15)
        before = mesh.proxy.command("stats")
        paced(count, rate, lambda i: op(a, i))
        wait_caught_up(mesh.regions, timeout=30)
        time.sleep(0.2)
        after = mesh.proxy.command("stats")
        delta = {route: {d: after[route][d] - before[route][d] for d in ("up", "down")}
                 for route in after}
        out[name] = {"a_to_b": link_bytes(delta, "a", "b") / count,
                     "b_to_a": link_bytes(delta, "b", "a") / count,
                     "all_links_per_receiver": total_bytes(delta) / count / 2}
    return out


def redis_bytes_per_op(pair, count, rate):
    primary = pair.primary.client()
    out = {}
    for name, op in COMMANDS.items():
        pair.wait_synced()
        before = pair.proxy.command("stats")["replica>primary"]
        offset_before = pair.offsets()[0]
        paced(count, rate, lambda i: op(primary, i))
        pair.wait_synced(timeout=30)
        time.sleep(0.2)
        after = pair.proxy.command("stats")["replica>primary"]
        out[name] = {"primary_to_replica": (after["down"] - before["down"]) / count,
                     "replica_to_primary": (after["up"] - before["up"]) / count,
                     "offset": (pair.offsets()[0] - offset_before) / count}
    return out


def partition_run(mesh, rate, before_s, partition_s, log, catch_up_cap_s=120):
    """Writes to a at `rate`; cuts region c off for `partition_s`; returns the catch-up time
    (heal until c shows the last write acknowledged before the heal) and the lag series."""
    clients = [region.client() for region in mesh.regions]
    run = LagRun(clients[0], {"b": clients[1], "c": clients[2]}, "part", rate)
    run.start()
    time.sleep(before_s)
    mesh.proxy.command("block c")
    blocked_at = time.monotonic()
    log(f"replication: region c partitioned for {partition_s:.0f} s at {rate} writes/s")
    time.sleep(partition_s)
    mesh.proxy.command("unblock")
    healed_at = time.monotonic()
    last_before_heal = len(run.acks) - 1
    deadline = healed_at + catch_up_cap_s
    while len(run.visible["c"]) <= last_before_heal and time.monotonic() < deadline:
        time.sleep(0.01)
    caught = len(run.visible["c"]) > last_before_heal
    catch_up_s = run.visible["c"][last_before_heal] - healed_at if caught else None
    time.sleep(3.0)  # a little steady state after catching up, for the plot
    run.stop()
    during = sum(1 for ack in run.acks if blocked_at <= ack < healed_at)
    return {"rate": rate, "partition_s": partition_s, "ops_during_partition": during,
            "catch_up_s": catch_up_s, "healed_at_s": healed_at - run.t0,
            "blocked_at_s": blocked_at - run.t0, "series_c": run.series("c"),
            "after_heal": lag_summary_after(run, "c", healed_at - run.t0 + (catch_up_s or 0))}


def used_memory(server):
    return int(server.info("memory")["used_memory"])


def lagging_peer_memory(mesh, ops, log, keys=100, batch=100):
    """The memory region a holds for a peer that stopped receiving: c is cut off, a takes `ops`
    SETs that overwrite `keys` keys (so its keyspace does not grow), and a's used_memory growth
    per op is what it keeps for c (and for b, until b acknowledges). After the heal and c's
    catch-up, what is left of the growth. redis-server keeps a fixed-size backlog instead (1 MB
    by default) and falls back to a full resync beyond it."""
    a, b = mesh.regions[0], mesh.regions[1]
    client = a.client()
    for start in range(0, keys, batch):
        client.mset({f"lagging:{i:04d}": b"v" * 16 for i in range(start, start + batch)})
    wait_caught_up(mesh.regions, timeout=30)
    mesh.proxy.command("block c")
    time.sleep(0.5)
    before_a, before_b = used_memory(a), used_memory(b)
    for start in range(0, ops, batch):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(ops, start + batch)):
            pipe.set(f"lagging:{i % keys:04d}", b"v" * 16)
        pipe.execute()
    time.sleep(1.0)  # b's acknowledgements arrive (50 ms away) and a trims what b has
    held_a, held_b = used_memory(a) - before_a, used_memory(b) - before_b
    mesh.proxy.command("unblock")
    caught = wait_caught_up(mesh.regions, timeout=120)
    time.sleep(1.0)
    after_a = used_memory(a) - before_a
    result = {"ops": ops, "held_per_op_a": held_a / ops, "held_per_op_b": held_b / ops,
              "left_after_catch_up_per_op_a": after_a / ops, "caught_up": caught}
    log(f"replication: memory held for a lagging peer: {result}")
    return result


def lag_summary_after(run, name, since_s):
    lags = [lag for t, lag in run.series(name) if t >= since_s]
    return {"p50_ms": percentile(lags, 0.5), "p99_ms": percentile(lags, 0.99)}


def run(lattice_binary, redis_binary, plan, log):
    delay_ms, jitter_ms = plan["delay_ms"], plan["jitter_ms"]
    results = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "rate": plan["rate"]}
    mesh = LatticeMesh(lattice_binary, delay_ms, jitter_ms)
    try:
        clients = [region.client() for region in mesh.regions]
        before = mesh.proxy.command("stats")
        lag = LagRun(clients[0], {"b": clients[1], "c": clients[2]}, "lag", plan["rate"])
        lag.start()
        time.sleep(plan["lag_s"])
        lag.stop()
        after = mesh.proxy.command("stats")
        results["lattice_lag"] = {name: lag_summary(lag, name) for name in ("b", "c")}
        results["lattice_lag_series"] = {name: lag.series(name) for name in ("b", "c")}
        delta = {r: {d: after[r][d] - before[r][d] for d in ("up", "down")} for r in after}
        results["lattice_lag_run_bytes"] = {
            "a_to_b": link_bytes(delta, "a", "b") / len(lag.acks),
            "all_links_per_receiver": total_bytes(delta) / len(lag.acks) / 2}
        log(f"replication: Lattice lag a->b {results['lattice_lag']['b']}")
        results["lattice_bytes"] = lattice_bytes_per_op(mesh, plan["bytes_ops"], plan["rate"])
        log(f"replication: Lattice bytes per op {results['lattice_bytes']}")
        results["partition"] = partition_run(mesh, plan["rate"], 3.0, plan["partition_s"], log)
        log(f"replication: catch-up after {plan['partition_s']} s partition: "
            f"{results['partition']['catch_up_s']} s")
        if plan.get("lagging_ops"):
            results["lagging_memory"] = lagging_peer_memory(mesh, plan["lagging_ops"], log)
    finally:
        mesh.stop()
    pair = RedisPair(redis_binary, delay_ms, jitter_ms)
    try:
        lag = LagRun(pair.primary.client(), {"replica": pair.replica.client()}, "lag",
                     plan["rate"])
        lag.start()
        time.sleep(plan["redis_lag_s"])
        lag.stop()
        results["redis_lag"] = lag_summary(lag, "replica")
        log(f"replication: redis-server lag primary->replica {results['redis_lag']}")
        results["redis_bytes"] = redis_bytes_per_op(pair, plan["bytes_ops"], plan["rate"])
        log(f"replication: redis-server bytes per op {results['redis_bytes']}")
    finally:
        pair.stop()
    return results

