"""The churn load of issue #17 (deleted and expired counters must be freed), shared by
tests/integration/test_churn_memory.py and the bench's churn phase (tests/bench/churn.py).

Per window, fresh names: a rate limiter's counters incremented in every region then given a short
TTL (INCR + PEXPIRE), and in each region SET + DEL, SADD + SREM, HINCRBY + DEL and
ZINCRBY + ZREM. Nothing stays visible once the TTLs pass; what is left is CRDT metadata, which
compaction must free once it is causally stable.
"""
import time

PIPELINE = 1000


def used_memory(server):
    from harness import info_fields
    return int(info_fields(server, "memory")["used_memory"])


def backlog_bytes(server):
    from harness import info_fields
    return int(info_fields(server, "replication").get("crdt_backlog_bytes", "0"))


def preload(clients, keys, value_size=64):
    """A baseline dataset (so the start figure is a working server's, not an empty one's)."""
    value = "x" * value_size
    for r, client in enumerate(clients):
        pipe = client.pipeline(transaction=False)
        for i in range(keys):
            pipe.set(f"base:{r}:{i}", value)
            if len(pipe) >= PIPELINE:
                pipe.execute()
        pipe.execute()


def churn(clients, windows, per_window, ttl_ms=100, log=None):
    """Runs the churn; returns the number of commands sent."""
    sent = 0
    for window in range(windows):
        for r, client in enumerate(clients):
            pipe = client.pipeline(transaction=False)
            for i in range(per_window):
                limiter = f"rl:{window}:{i}"  # the same names in every region
                own = f"{window}:{r}:{i}"
                pipe.incr(limiter)
                pipe.pexpire(limiter, ttl_ms)
                pipe.set(f"sd:{own}", "v")
                pipe.delete(f"sd:{own}")
                pipe.sadd(f"ss:{own}", "m")
                pipe.srem(f"ss:{own}", "m")
                pipe.hincrby(f"hc:{own}", "f", 1)
                pipe.delete(f"hc:{own}")
                pipe.zincrby(f"zs:{own}", 1, "m")
                pipe.zrem(f"zs:{own}", "m")
                if len(pipe) >= PIPELINE:
                    sent += len(pipe)
                    pipe.execute()
            sent += len(pipe)
            pipe.execute()
        if log:
            log(f"churn window {window + 1}/{windows}: {sent} commands")
    return sent


def beyond_ring(server):
    """used_memory less the in-memory op ring (crdt_backlog_bytes), which the issue's target
    excludes by name: it is bounded by crdt-backlog-size, not by the churn."""
    return used_memory(server) - backlog_bytes(server)


def wait_back(servers, start, slack, timeout, measure=used_memory):
    """Bounded poll until every region's `measure` (used_memory by default) is within `slack` (a
    fraction) of its start figure. Returns (seconds taken or None, the last figures)."""
    began = time.monotonic()
    deadline = began + timeout
    figures = [measure(s) for s in servers]
    while time.monotonic() < deadline:
        figures = [measure(s) for s in servers]
        if all(f <= s0 * (1 + slack) for f, s0 in zip(figures, start)):
            return time.monotonic() - began, figures
        time.sleep(0.2)
    return None, figures
