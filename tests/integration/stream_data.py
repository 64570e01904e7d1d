"""Streams in every shape Valkey's RDB stream encoding takes, for the stream DUMP/RESTORE and RDB
tests and for scripts/make-rdb-corpus (the unit tests' fixtures, tests/store/rdb_stream_test.cc,
which know this dataset: keep them in step). Every ID is explicit, so the content is the same on
every run; only delivery and seen times vary.

- x:small    three entries: two with the master's fields (same-fields flag), one with others
- x:ints     values that listpacks hold as integers of every width, and a negative one
- x:deleted  ten entries, four deleted (the first, so the master entry is a deleted one; two in
             the middle; the last), max deleted ID set
- x:empty    every entry deleted: length 0, last ID, entries added and max deleted ID kept
- x:nodes    250 entries (three 100-entry nodes), then ten 2 KB values (nodes closed by bytes)
- x:seq      IDs whose sequence falls after a higher one in the node (a negative seq delta)
- x:groups   two groups: g1 delivered to c1 (two, one acked) and c2 (one), g2 with an idle
             consumer and nothing pending, g3 at $ with no consumers
"""


def fill_streams(r):
    """Writes the dataset into r's current db; returns the keys, x:groups last."""
    p = r.pipeline(transaction=False)
    p.xadd("x:small", {"a": "1", "b": "2"}, id="1-1")
    p.xadd("x:small", {"a": "3", "b": "4"}, id="1-2")
    p.xadd("x:small", {"c": "5"}, id="2-0")
    p.xadd("x:ints", {"f": "7", "g": "-5", "h": "4000", "i": "70000", "j": "-2000000000",
                      "k": "123456789012", "l": "12abc"}, id="5-0")
    for i in range(1, 11):
        p.xadd("x:deleted", {"n": str(i)}, id=f"{i}-0")
    p.xdel("x:deleted", "1-0", "4-0", "5-0", "10-0")
    p.xadd("x:empty", {"v": "1"}, id="3-3")
    p.xdel("x:empty", "3-3")
    for i in range(250):
        p.xadd("x:nodes", {"field": f"value-{i}", "n": str(i)}, id=f"{1000 + i}-{i % 3}")
    for i in range(10):
        p.xadd("x:nodes", {"big": chr(97 + i) * 2000}, id=f"{2000 + i}-0")
    p.xadd("x:seq", {"a": "1"}, id="7-5")
    p.xadd("x:seq", {"a": "2"}, id="8-0")
    p.xadd("x:seq", {"a": "3"}, id="8-1")
    for i in range(1, 5):
        p.xadd("x:groups", {"e": str(i)}, id=f"{i}-0")
    p.execute()
    r.xgroup_create("x:groups", "g1", id="0")
    r.xreadgroup("g1", "c1", {"x:groups": ">"}, count=2)
    r.xreadgroup("g1", "c2", {"x:groups": ">"}, count=1)
    r.xack("x:groups", "g1", "1-0")
    r.xgroup_create("x:groups", "g2", id="2-0")
    r.execute_command("XGROUP", "CREATECONSUMER", "x:groups", "g2", "idle")
    r.xgroup_create("x:groups", "g3", id="$")
    return ["x:small", "x:ints", "x:deleted", "x:empty", "x:nodes", "x:seq", "x:groups"]


INFO_IGNORED = {b"radix-tree-keys", b"radix-tree-nodes", b"groups"}


def _pairs(reply):
    return dict(zip(reply[::2], reply[1::2]))


def groups_view(r, key):
    """A stream's consumer groups as two servers holding the same groups show them alike: XINFO
    STREAM FULL's groups (last-delivered ID, entries-read, lag, the PEL with owners, delivery
    times and counts, consumers with seen time and their PELs) and each group's XPENDING summary.
    Left out: active-time, which redis-server 7.0 does not have (Valkey 9 does)."""
    full = _pairs(r.execute_command("XINFO", "STREAM", key, "FULL"))
    groups = []
    for group in full[b"groups"]:
        fields = _pairs(group)
        consumers = []
        for consumer in fields.pop(b"consumers"):
            consumer = _pairs(consumer)
            consumer.pop(b"active-time", None)
            consumers.append(consumer)
        fields[b"consumers"] = consumers
        fields[b"xpending"] = r.execute_command("XPENDING", key, fields[b"name"])
        groups.append(fields)
    return groups


def stream_view(r, key):
    """What two servers holding the same stream show alike: XRANGE, XLEN and XINFO STREAM
    without the node layout (radix-tree-*) and groups."""
    info = r.execute_command("XINFO", "STREAM", key)
    fields = dict(zip(info[::2], info[1::2]))
    return {"xrange": r.xrange(key), "xlen": r.xlen(key),
            "info": {k: v for k, v in fields.items() if k not in INFO_IGNORED}}
