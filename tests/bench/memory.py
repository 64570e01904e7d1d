"""Memory per key and per element: each dataset is loaded with `redis-cli --pipe` into a fresh
server (redis-server, then Lattice standalone), and the growth of INFO memory used_memory and of
the process RSS (/proc/PID/status VmRSS) is divided by the number of keys or elements.
Datasets: 16-byte strings; hashes, sets, zsets and lists of `elements` (large: redis-server's hashtable,
skiplist encodings) and of `small_elements` each (small: its listpack encodings); streams of
`elements` and of `small_elements` entries (XADD *, one 5-byte field and a 16-byte value each).
LATTICE_BENCH_MEMORY=stream,hash (dataset kinds, comma-separated) runs only those."""
import os
import subprocess
import time

from servers import Server

VALUE = b"v" * 16  # 16-byte values (strings and hash field values)
FIELDS_PER_COMMAND = 100


def command(*words):
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        parts.append(b"$%d\r\n%s\r\n" % (len(word), word))
    return b"".join(parts)


def dataset_bytes(kind, keys, elements):
    """RESP for `keys` keys of `elements` elements each (strings: `keys` SETs)."""
    out = []
    if kind == "string":
        for i in range(keys):
            out.append(command(b"SET", b"key:%08d" % i, VALUE))
        return b"".join(out)
    for i in range(keys):
        key = b"%s:%06d" % (kind.encode(), i)
        for start in range(0, elements, FIELDS_PER_COMMAND):
            members = range(start, min(elements, start + FIELDS_PER_COMMAND))
            if kind == "stream":
                out.extend(command(b"XADD", key, b"*", b"field", VALUE) for _ in members)
                continue
            if kind == "hash":
                words = [b"HSET", key] + [w for j in members for w in (b"field:%08d" % j, VALUE)]
            elif kind == "set":
                words = [b"SADD", key] + [b"member:%08d" % j for j in members]
            elif kind == "list":
                words = [b"RPUSH", key] + [b"member:%08d" % j for j in members]
            else:
                words = [b"ZADD", key] + [w for j in members for w in (b"%d" % j,
                                                                       b"member:%08d" % j)]
            out.append(command(*words))
    return b"".join(out)


def measure(server, payload, elements):
    time.sleep(0.3)
    before_used = int(server.info("memory")["used_memory"])
    before_rss = server.rss_bytes()
    started = time.monotonic()
    subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=payload,
                   stdout=subprocess.DEVNULL, check=True, timeout=600)
    load_s = time.monotonic() - started
    time.sleep(0.3)
    used = int(server.info("memory")["used_memory"]) - before_used
    rss = server.rss_bytes() - before_rss
    return {"used_memory_per": used / elements, "rss_per": rss / elements, "load_s": load_s}


def run(lattice_binary, redis_binary, string_keys, collection_keys, elements, log,
        small_keys=0, small_elements=10):
    """Returns {dataset: {"elements": n, "redis": {...}, "lattice": {...}}}; the small
    collections are named "small hash" etc."""
    plan = [("string", string_keys, 1), ("hash", collection_keys, elements),
            ("set", collection_keys, elements), ("zset", collection_keys, elements),
            ("list", collection_keys, elements), ("stream", collection_keys, elements)]
    if small_keys:
        plan += [(kind, small_keys, small_elements)
                 for kind in ("hash", "set", "zset", "list", "stream")]
    only = os.environ.get("LATTICE_BENCH_MEMORY")
    if only:
        plan = [step for step in plan if step[0] in only.split(",")]
    results = {}
    for kind, keys, per_key in plan:
        payload = dataset_bytes(kind, keys, per_key)
        count = keys * per_key
        label = (f"{keys:,} strings of 16 B" if kind == "string"
                 else f"{keys:,} {kind}es x {per_key:,}" if kind == "hash"
                 else f"{keys:,} {kind}s x {per_key:,}")
        entry = {"elements": count, "label": label}
        for target, binary in (("redis", redis_binary), ("lattice", lattice_binary)):
            server = Server(target if target == "redis" else "lattice", binary,
                            cpus="0", label=f"{target} memory").start()
            try:
                entry[target] = measure(server, payload, count)
            finally:
                server.cleanup()
            log(f"memory {label:<26} {target:<8} used_memory {entry[target]['used_memory_per']:7.1f}"
                f" B, RSS {entry[target]['rss_per']:7.1f} B per element "
                f"(load {entry[target]['load_s']:.1f} s)")
        results[kind if per_key >= elements or kind == "string" else f"small {kind}"] = entry
    return results
