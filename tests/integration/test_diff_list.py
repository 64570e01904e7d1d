"""Differential test of the list family: a seeded random stream of list commands (LPUSH ...
LMPOP, with wrong types, bad arguments, negative and out-of-range indexes) sent to
lattice-server and to Debian's redis-server, every reply compared. Lists are deterministic, so
every reply is compared exactly. OBJECT ENCODING is left out: Redis 7.0 reports every list as a
quicklist, Valkey 9 (and Lattice) a small one as a listpack.

Replay a failure with LATTICE_SEED=<seed> (the seed is printed and named in the failure).
"""
import os
import random
import time
import unittest

from differential import Differential

LISTS = ["l0", "l1", "l2", "{l}3"]
KEYS = LISTS + ["str", "set", "missing"]
WRITABLE = [k for k in KEYS if k != "missing"]
ELEMENTS = ["a", "b", "c", "d", "1", "2", "-3", "", "é", "a b", "A", "x" * 70]
INDEXES = ["0", "1", "2", "-1", "-2", "3", "-5", "10", "-100", "100",
           "9223372036854775807", "-9223372036854775808"]
BAD_NUMBERS = ["abc", "", "1.5", "9223372036854775808", "0x1", " 1"]
ENDS = ["LEFT", "RIGHT", "left", "Right"]


def element(rng):
    return rng.choice(ELEMENTS)


def elements(rng, low=1, high=5):
    return [element(rng) for _ in range(rng.randrange(low, high))]


def index(rng):
    return rng.choice(INDEXES) if rng.random() < 0.95 else rng.choice(BAD_NUMBERS)


def gen_push(rng, k):
    name = rng.choice(["LPUSH", "RPUSH", "lpush", "rpush", "LPUSHX", "RPUSHX"])
    return [name, k] + elements(rng)


def gen_pop(rng, k):
    name = rng.choice(["LPOP", "RPOP"])
    r = rng.random()
    if r < 0.5:
        return [name, k]
    if r < 0.85:
        return [name, k, str(rng.randrange(0, 6))]
    return [name, k, rng.choice(["-1", "abc", "9223372036854775807", "1.5", ""])] + (
        ["x"] if rng.random() < 0.3 else [])


def gen_lpos(rng, k):
    cmd = ["LPOS", k, element(rng)]
    for _ in range(rng.randrange(0, 4)):
        opt = rng.randrange(8)
        if opt < 2:
            # Not -9223372036854775808: Valkey 9 refuses it (out of range), Redis 7.0 takes it.
            cmd += ["RANK", rng.choice(["1", "2", "-1", "-2", "3", "0", "abc",
                                        "-9223372036854775807", "9223372036854775807"])]
        elif opt < 4:
            cmd += ["COUNT", rng.choice(["0", "1", "2", "5", "-1", "x"])]
        elif opt < 6:
            cmd += ["MAXLEN", rng.choice(["0", "1", "2", "3", "-1", "y"])]
        elif opt < 7:
            cmd += [rng.choice(["RANK", "COUNT", "MAXLEN"])]
        else:
            cmd += ["bogus"]
    return cmd


def gen_lmpop(rng):
    keys = [rng.choice(KEYS) for _ in range(rng.randrange(1, 4))]
    numkeys = str(len(keys))
    if rng.random() < 0.15:
        numkeys = rng.choice(["0", "-1", "abc", str(len(keys) + 1), "9223372036854775807"])
    cmd = ["LMPOP", numkeys] + keys
    if rng.random() < 0.9:
        cmd.append(rng.choice(ENDS + ["UP"]))
    if rng.random() < 0.5:
        cmd += ["COUNT", rng.choice(["1", "2", "10", "0", "-1", "x"])]
    if rng.random() < 0.1:
        cmd += rng.choice([["COUNT"], ["bogus"], ["COUNT", "1", "COUNT", "2"]])
    return cmd


def gen_write(rng, k):
    r = rng.randrange(20)
    if r < 7:
        return gen_push(rng, k)
    if r < 10:
        return gen_pop(rng, k)
    if r < 12:
        return ["LINSERT", k, rng.choice(["BEFORE", "AFTER", "before", "middle"]), element(rng),
                element(rng)]
    if r < 14:
        return ["LSET", k, index(rng), element(rng)]
    if r < 15:
        return ["LREM", k, rng.choice(["0", "1", "2", "-1", "-2", "x"]), element(rng)]
    if r < 16:
        return ["LTRIM", k, index(rng), index(rng)]
    if r < 18:
        return ["LMOVE", rng.choice(KEYS), rng.choice(WRITABLE), rng.choice(ENDS),
                rng.choice(ENDS + ["MIDDLE"])]
    if r < 19:
        return ["RPOPLPUSH", rng.choice(KEYS), rng.choice(WRITABLE)]
    return gen_lmpop(rng)


def gen_read(rng, k):
    r = rng.randrange(10)
    if r < 4:
        return ["LRANGE", k, index(rng), index(rng)]
    if r < 6:
        return ["LINDEX", k, index(rng)]
    if r < 8:
        return ["LLEN", k]
    return gen_lpos(rng, k)


def gen_bad(rng, k):
    return rng.choice([
        ["LPUSH", k], ["RPUSH"], ["LPOP"], ["LRANGE", k, "0"], ["LINDEX", k], ["LLEN"],
        ["LLEN", k, "x"], ["LINSERT", k, "BEFORE", "a"], ["LSET", k, "0"], ["LREM", k, "0"],
        ["LTRIM", k, "0"], ["LMOVE", k, k, "LEFT"], ["RPOPLPUSH", k], ["LMPOP", "1"],
        ["LMPOP", "1", k], ["LPOS", k], ["LPUSHX", k], ["RPOP", k, "1", "2"]])


def generate(rng, count):
    commands = []
    for _ in range(count):
        k = rng.choice(KEYS)
        r = rng.randrange(100)
        if r < 50:
            commands.append(gen_write(rng, rng.choice(WRITABLE)))
        elif r < 85:
            commands.append(gen_read(rng, k))
        elif r < 93:
            commands.append(rng.choice([
                ["SET", "str", "v"], ["SADD", "set", "m"], ["DEL", rng.choice(KEYS)],
                ["TYPE", k], ["EXISTS", k], ["SET", rng.choice(LISTS), "x"],
                ["RPUSH", "l0"] + [f"e{i}" for i in range(rng.randrange(1, 40))],
                ["COPY", rng.choice(LISTS), rng.choice(LISTS)],
                ["RENAME", rng.choice(LISTS), rng.choice(LISTS)]]))
        else:
            commands.append(gen_bad(rng, k))
    return commands


class ListDifferentialTest(unittest.TestCase):
    def test_random_list_stream_matches_redis(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 32)))
        count = int(os.environ.get("LATTICE_DIFF_COMMANDS", "8000"))
        print(f"\ntest_diff_list seed={seed} commands={count}")
        rng = random.Random(seed)
        commands = generate(rng, count)
        started = time.monotonic()
        with Differential() as diff:
            diff.check(commands, seed=seed)
            diff.check([["LRANGE", k, "0", "-1"] for k in KEYS] + [["TYPE", k] for k in KEYS],
                       seed=seed)
            # MULTI/EXEC and Lua run the same commands.
            diff.check([["MULTI"], ["RPUSH", "l1", "m1", "m2"], ["LPOP", "l1"],
                        ["LRANGE", "l1", "0", "-1"], ["EXEC"],
                        ["EVAL", "redis.call('RPUSH', KEYS[1], 'z'); "
                         "return redis.call('LRANGE', KEYS[1], 0, -1)", "1", "l2"],
                        ["EVAL", "return redis.pcall('LPUSH', KEYS[1], 'z')", "1", "str"],
                        ["SCAN", "0", "TYPE", "list", "COUNT", "1000"]],
                       seed=seed, normalize=lambda cmd, reply: (
                           [reply[0], sorted(reply[1])] if cmd[0] == "SCAN" else reply))
        self.assertLess(time.monotonic() - started, 60, f"seed={seed}: too slow")


if __name__ == "__main__":
    unittest.main()
