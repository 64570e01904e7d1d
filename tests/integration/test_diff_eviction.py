"""Differential test of maxmemory's replies against Debian's redis-server 7.0.

Both servers get the same CONFIG SET/GET of the eviction directives (values, normalisation such
as "2mb" -> 2097152, invalid values and their errors), OBJECT IDLETIME/FREQ under each policy
(errors and the LFU counter with lfu-log-factor 0, where every access counts one), and the -OOM
error of a denyoom command and of scripts at `maxmemory 1` under noeviction, with reads, DEL and
non-denyoom writes still served.

Left out: maxmemory-samples out of range (7.0 takes 1..INT_MAX, Valkey 8+ 1..64, which Lattice
follows).
"""
import unittest

from differential import Differential

POLICIES = ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
            "allkeys-lfu", "allkeys-random", "noeviction"]


class EvictionDifferential(unittest.TestCase):
    def test_config_object_and_oom_replies_match_redis(self):
        with Differential() as diff:
            commands = [["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
                        ["CONFIG", "SET", "lfu-log-factor", "0"]]
            commands += [["SET", "k", "v"], ["OBJECT", "FREQ", "k"]]
            commands += [["GET", "k"]] * 7 + [["OBJECT", "FREQ", "k"], ["OBJECT", "FREQ", "nokey"],
                                              ["OBJECT", "IDLETIME", "k"],
                                              ["OBJECT", "IDLETIME", "nokey"]]
            for policy in POLICIES:
                commands += [["CONFIG", "SET", "maxmemory-policy", policy],
                             ["CONFIG", "GET", "maxmemory-policy"], ["OBJECT", "FREQ", "k"]]
            commands += [["CONFIG", "SET", "maxmemory-policy", "lru"],
                         ["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LRU"],
                         ["CONFIG", "GET", "maxmemory-policy"],
                         ["CONFIG", "SET", "maxmemory", "2mb"], ["CONFIG", "GET", "maxmemory"],
                         ["CONFIG", "SET", "maxmemory", "-1"],
                         ["CONFIG", "SET", "maxmemory", "abc"],
                         ["CONFIG", "SET", "maxmemory-samples", "10"],
                         ["CONFIG", "SET", "maxmemory-eviction-tenacity", "101"],
                         ["CONFIG", "SET", "maxmemory-eviction-tenacity", "50"],
                         ["CONFIG", "SET", "lfu-decay-time", "5"],
                         ["CONFIG", "SET", "lfu-log-factor", "-1"],
                         ["CONFIG", "GET", "maxmemory-samples"],
                         ["CONFIG", "GET", "maxmemory-eviction-tenacity"],
                         ["CONFIG", "GET", "lfu-*"],
                         ["CONFIG", "SET", "maxmemory", "0"]]
            diff.check(commands, unordered={"CONFIG"})
            # Over the limit under noeviction.
            commands = [["CONFIG", "SET", "maxmemory-policy", "noeviction"],
                        ["SET", "a", "1"], ["RPUSH", "l", "x"],
                        ["CONFIG", "SET", "maxmemory", "1"],
                        ["SET", "b", "2"], ["INCR", "a"], ["APPEND", "a", "x"],
                        ["RPUSH", "l", "y"], ["HSET", "h", "f", "v"], ["SADD", "s", "m"],
                        ["ZADD", "z", "1", "m"], ["SETNX", "c", "1"], ["MSET", "x", "1", "y", "2"],
                        ["GET", "a"], ["LRANGE", "l", "0", "-1"], ["EXISTS", "a"],
                        ["EXPIRE", "a", "100"], ["PERSIST", "a"], ["DEL", "l"],
                        ["MULTI"], ["SET", "d", "1"], ["GET", "a"], ["EXEC"],
                        ["EVAL", "return redis.call('set', 'e', '1')", "0"],
                        ["EVAL", "return redis.call('get', 'a')", "0"],
                        ["EVAL", "#!lua\nreturn redis.call('set', 'e', '1')", "0"],
                        ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", "0"],
                        ["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', 'e', '1')",
                         "0"],
                        ["GET", "e"], ["DBSIZE"],
                        ["CONFIG", "SET", "maxmemory", "0"],
                        ["SET", "b", "2"], ["GET", "b"]]

            def normalize(command, reply):
                # redis-server 7.0 appends the script's location to an error raised in a script;
                # only the error's first words are compared.
                if isinstance(reply, tuple) and command[0] == "EVAL":
                    return reply[0], reply[1].split(" script:")[0].split(".")[0]
                return reply
            diff.check(commands, normalize=normalize)


if __name__ == "__main__":
    unittest.main(verbosity=2)
