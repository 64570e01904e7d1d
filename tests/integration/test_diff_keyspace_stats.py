"""Differential test of INFO stats keyspace_hits / keyspace_misses: the same command sequence to
lattice-server and to Debian's redis-server 7.0, the counters compared after every command.
Valkey counts a hit or miss in lookupKeyRead (every read command's key lookup, a key of another
type included) and nothing in lookupKeyWrite (write commands).

Left out, as known differences: SUNION/SDIFF/SINTER(STORE) with a missing key (redis-server 7.0
counts no miss there; Lattice counts one per key, as Valkey's lookupKeyRead does).
"""
import unittest

from differential import Differential

SEQUENCE = [
    ["HSET", "h", "f", "v"], ["HGET", "h", "f"], ["HGET", "h", "nof"], ["HGET", "nokey", "f"],
    ["ZADD", "z", "1", "m"], ["ZSCORE", "z", "m"], ["ZSCORE", "nokey", "m"],
    ["SADD", "s", "a"], ["SISMEMBER", "s", "a"], ["SISMEMBER", "nokey", "a"],
    ["GET", "nokey"], ["SET", "k", "v"], ["GET", "k"], ["GET", "h"],
    ["EXISTS", "k", "nokey", "h"], ["TYPE", "k"], ["TTL", "nokey"], ["PTTL", "k"],
    ["HGETALL", "h"], ["HKEYS", "h"], ["HMGET", "h", "f", "x"], ["HSTRLEN", "h", "f"],
    ["HRANDFIELD", "h"], ["ZRANGE", "z", "0", "-1"], ["ZCARD", "z"], ["ZCOUNT", "z", "0", "5"],
    ["ZMSCORE", "z", "m", "x"], ["HLEN", "h"], ["SCARD", "s"], ["SMISMEMBER", "s", "a", "b"],
    ["INCR", "cnt"], ["INCRBY", "cnt", "2"], ["ZINCRBY", "z", "1", "m"], ["EXPIRE", "k", "100"],
    ["PERSIST", "k"], ["HINCRBY", "h", "n", "1"], ["HSETNX", "h", "f", "w"],
    ["SREM", "s", "zz"], ["ZREM", "z", "zz"], ["HDEL", "h", "zz"], ["APPEND", "k", "x"],
    ["SETRANGE", "k", "0", "y"], ["MGET", "k", "nokey", "h"], ["GETRANGE", "k", "0", "1"],
    ["ZUNIONSTORE", "dz", "2", "z", "nokey"], ["ZINTER", "2", "z", "dz"],
    ["ZRANGESTORE", "dst", "z", "0", "-1"], ["STRLEN", "k"], ["HEXISTS", "h", "f"],
    ["ZRANK", "z", "m"], ["ZREVRANK", "nokey", "m"], ["HSCAN", "h", "0"], ["ZSCAN", "z", "0"],
    ["SSCAN", "s", "0"], ["SMEMBERS", "s"], ["SRANDMEMBER", "s"], ["TOUCH", "k", "nokey"],
    ["OBJECT", "ENCODING", "k"], ["GETDEL", "nokey"], ["GETEX", "k"], ["GETSET", "k", "v2"],
    ["SMOVE", "s", "s2", "a"], ["SPOP", "nokey"], ["ZPOPMIN", "nokey"], ["RENAME", "dst", "dst2"],
    ["DEL", "dst2"], ["COPY", "k", "k2"], ["COPY", "nokey", "k9"], ["MSETNX", "n1", "1"],
    ["SETNX", "k", "z"], ["HGET", "s2", "f"],
]


def stats(conn):
    info = conn.call("INFO", "stats")
    fields = dict(line.split(":", 1) for line in info.decode().split("\r\n") if ":" in line)
    return int(fields["keyspace_hits"]), int(fields["keyspace_misses"])


class KeyspaceStatsTest(unittest.TestCase):
    def test_hits_and_misses_match_after_every_command(self):
        with Differential() as diff:
            for command in SEQUENCE:
                diff.a.call(*command)
                diff.b.call(*command)
                self.assertEqual(stats(diff.a), stats(diff.b),
                                 "after %s: (hits, misses) redis vs lattice" % " ".join(command))
            self.assertEqual(stats(diff.b), stats(diff.a))


if __name__ == "__main__":
    unittest.main()
