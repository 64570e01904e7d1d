"""The import phase (issue #23's closing numbers), run with `scripts/bench --only import`: a
redis-server is filled with `keys` keys of mixed types (95% 16-byte strings from DEBUG POPULATE,
then hashes and sets of 10 elements), and three things are timed against it:

- from an RDB file: SAVE, then `lattice-server --import-rdb dump.rdb` on an empty region, from
  the process start until the region answers DBSIZE = keys (it serves -LOADING meanwhile), and the
  load time the region's log reports;
- from a live primary: a fresh region sends REPLICAOF, timed until master_link_status is up and
  DBSIZE equals the primary's;
- replication lag under a steady write rate on the primary (`rate` SETs a second in pipelines of
  100, paced by the monotonic clock, for `lag_s` seconds): every half second the primary's
  master_repl_offset minus the offset the region acknowledged (INFO replication slave0 on the
  primary) and minus the region's own slave_repl_offset, in bytes; and every second a probe key
  written on the primary, timed until the region returns it (seconds of lag).

Writes import.json into the output dir and returns the numbers. Timings on a loaded machine are
noisy: the load average is recorded beside them."""
import json
import os
import re
import socket
import statistics
import sys
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from servers import Server  # noqa: E402


def fill(primary, keys, log):
    """95% strings (DEBUG POPULATE, 16-byte values), the rest hashes and sets of 10."""
    strings = keys * 95 // 100
    primary.execute_command("DEBUG", "POPULATE", strings, "key", 16)
    collections = keys - strings
    pipe = primary.pipeline(transaction=False)
    for i in range(collections):
        if i % 2 == 0:
            pipe.hset(f"hash:{i}", mapping={f"field:{j}": f"value-{i}-{j:06d}" for j in range(10)})
        else:
            pipe.sadd(f"set:{i}", *[f"member-{i}-{j:06d}" for j in range(10)])
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    log(f"import: primary filled with {primary.dbsize():,} keys ({strings:,} strings, "
        f"{collections - collections // 2:,} hashes, {collections // 2:,} sets)")


def poll(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # -LOADING while the region loads, or not up yet
            pass
        time.sleep(interval)
    return False


def from_file(lattice, rdb, keys, log):
    region = Server("lattice", lattice, ["--import-rdb", rdb])
    try:
        began = time.monotonic()
        region.start(timeout=600)  # answers PING once loaded (PING gets -LOADING before)
        loaded = poll(lambda: region.client().dbsize() == keys, 600)
        took = time.monotonic() - began
        match = re.search(r"Loaded (\d+) keys .* in ([0-9.]+) s", region.read_log())
        result = {"seconds": took, "loaded": loaded, "load_avg": os.getloadavg()[0],
                  "log_load_seconds": float(match.group(2)) if match else None,
                  "rss_bytes": region.rss_bytes()}
        log(f"import: --import-rdb {keys:,} keys: {took:.1f} s to DBSIZE (log: load "
            f"{result['log_load_seconds']} s), load average {result['load_avg']:.1f}")
        return result
    finally:
        region.cleanup()


def from_primary(lattice, source, keys, log):
    region = Server("lattice", lattice).start()
    began = time.monotonic()
    region.client().execute_command("REPLICAOF", "127.0.0.1", str(source.port))

    def synced():
        info = region.info("replication")
        return info.get("master_link_status") == "up" and region.client().dbsize() == keys
    ok = poll(synced, 900)
    took = time.monotonic() - began
    log(f"import: REPLICAOF {keys:,} keys: {took:.1f} s to link up and DBSIZE equal "
        f"(ok {ok}), load average {os.getloadavg()[0]:.1f}")
    return region, {"seconds": took, "synced": ok, "load_avg": os.getloadavg()[0]}


def paced_writer(source, rate, seconds, stop, sent):
    """SETs in pipelines of 100 over a raw socket (redis-py's pipelines cost too much CPU on a
    loaded machine to reach 10k/s), paced by the monotonic clock."""
    batch = 100
    period = batch / rate
    sock = socket.create_connection(("127.0.0.1", source.port), timeout=30)
    began = time.monotonic()
    n = 0
    try:
        while not stop.is_set() and time.monotonic() - began < seconds:
            out = []
            for _ in range(batch):
                key = f"steady:{n % 100000}".encode()
                value = f"v{n:012d}".encode()
                out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                           % (len(key), key, len(value), value))
                n += 1
            sock.sendall(b"".join(out))
            replies = b""
            while replies.count(b"\r\n") < batch:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the primary closed the writer's connection")
                replies += chunk
            sent[0] = n
            wait = began + (n / batch) * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    finally:
        sent[1] = time.monotonic() - began
        sock.close()


def acked_offset(primary_info):
    for key, value in primary_info.items():
        if key.startswith("slave") and "offset=" in value:
            return int(value.split("offset=")[1].split(",")[0])
    return None


def lag(source, region, rate, seconds, log):
    stop = threading.Event()
    sent = [0, 0.0]
    writer = threading.Thread(target=paced_writer, args=(source, rate, seconds, stop, sent))
    primary = source.client()
    replica = region.client()
    acked_lag = []
    applied_lag = []
    probes = []
    writer.start()
    began = time.monotonic()
    try:
        next_probe = began + 1
        while time.monotonic() - began < seconds:
            info = source.info("replication")
            offset = int(info["master_repl_offset"])
            acked = acked_offset(info)
            if acked is not None:
                acked_lag.append(offset - acked)
            applied_lag.append(offset - int(region.info("replication")["slave_repl_offset"]))
            if time.monotonic() >= next_probe:
                token = f"{time.monotonic():.6f}"
                primary.set("probe", token)
                written = time.monotonic()
                if poll(lambda: replica.get("probe") == token.encode(), 60, interval=0.001):
                    probes.append(time.monotonic() - written)
                next_probe = time.monotonic() + 1
            time.sleep(0.5)
    finally:
        stop.set()
        writer.join(timeout=60)
    achieved = sent[0] / sent[1] if sent[1] else 0
    caught_up = poll(lambda: int(region.info("replication")["slave_repl_offset"]) ==
                     int(source.info("replication")["master_repl_offset"]), 120)

    def summary(values):
        if not values:
            return None
        ordered = sorted(values)
        return {"median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
                "max": ordered[-1], "samples": len(ordered)}
    result = {"target_rate": rate, "achieved_rate": achieved, "seconds": seconds,
              "acked_lag_bytes": summary(acked_lag), "applied_lag_bytes": summary(applied_lag),
              "probe_seconds": summary(probes), "caught_up_after": caught_up,
              "load_avg": os.getloadavg()[0]}
    log(f"import: lag at {achieved:,.0f} writes/s for {seconds} s: acknowledged-offset lag "
        f"{result['acked_lag_bytes']} bytes, applied-offset lag {result['applied_lag_bytes']} "
        f"bytes, probe {result['probe_seconds']} s, caught up {caught_up}")
    return result


def run(lattice, redis_binary, plan, out_dir, log):
    keys = plan["keys"]
    source = Server("redis", redis_binary, ["--appendonly", "no", "--enable-debug-command", "yes",
                                     "--repl-backlog-size", "64mb"]).start()
    region = None
    try:
        slow = redis.Redis(host="127.0.0.1", port=source.port, socket_timeout=600)
        fill(slow, keys, log)  # DEBUG POPULATE and SAVE take long on a loaded machine
        slow.save()
        rdb = os.path.join(source.dir, "dump.rdb")
        results = {"keys": keys, "rdb_bytes": os.path.getsize(rdb)}
        results["from_file"] = from_file(lattice, rdb, keys, log)
        region, results["from_primary"] = from_primary(lattice, source, keys, log)
        results["lag"] = lag(source, region, plan["rate"], plan["lag_s"], log)
        with open(os.path.join(out_dir, "import.json"), "w") as f:
            json.dump(results, f, indent=1)
        return results
    finally:
        if region is not None:
            region.cleanup()
        source.cleanup()
