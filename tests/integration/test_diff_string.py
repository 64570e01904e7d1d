"""Differential test of the string family: a seeded random stream of string commands (with wrong
types, bad arguments and edge values) sent to lattice-server and to Debian's redis-server 7.0;
every reply must match byte for byte.

Set LATTICE_SEED to replay a failure; the seed is printed and named in every failure message.
Left out on purpose: SET ... IFEQ (Valkey 9 only; tested in test_string.py and the Catch2 tests)
and short TTLs (the two servers would see them expire at different moments): every relative
time here is at least 1000 s, and absolute times are either far in the future or long past.
"""
import os
import random
import sys
import time
import unittest

from differential import Differential

COMMANDS = 20000
KEYS = ["k0", "k1", "k2", "k3", "k4", "{t}k5", "n0", "n1"]
TYPED = ["set0", "hash0"]  # created as a set and a hash, then fair game for every command

INT_EDGES = ["0", "1", "-1", "9223372036854775807", "-9223372036854775808",
             "9223372036854775808", "-9223372036854775809", "007", " 1", "1 ", "+1", "", "abc",
             "1.5", "0x10", "-0"]
TIME_ARGS = ["0", "-1", "-100", "abc", "1.5", "", "9223372036854775807", "9223372036854776",
             "9223372036854775", "922337203685477"]


def random_value(rng):
    choice = rng.random()
    if choice < 0.35:
        return str(rng.randint(-1000, 1000))
    if choice < 0.5:
        return rng.choice(INT_EDGES)
    if choice < 0.6:
        return rng.choice(["1e3", "3.5", "-2.25", "inf", "nan", "1e4932", "0.1", "5.0e2"])
    if choice < 0.7:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 6)))
    return "".join(rng.choice("abcxyz") for _ in range(rng.randint(0, 8)))


def random_key(rng):
    return rng.choice(KEYS + TYPED + ["missing"])


def random_int(rng):
    return str(rng.randint(-30, 30)) if rng.random() < 0.8 else rng.choice(INT_EDGES)


def expire_option(rng, for_set):
    """A time option; mostly valid long times, sometimes invalid values."""
    now = int(time.time())
    kind = rng.choice(["EX", "PX", "EXAT", "PXAT"])
    roll = rng.random()
    if roll < 0.15:
        return [kind, rng.choice(TIME_ARGS)]
    if roll < 0.25 and kind in ("EXAT", "PXAT"):
        return [kind, str(rng.randint(1, 1000))]  # long past: the key goes away
    if kind == "EX":
        return [kind, str(rng.randint(1000, 100000))]
    if kind == "PX":
        return [kind, str(rng.randint(1000000, 100000000))]
    if kind == "EXAT":
        return [kind, str(now + rng.randint(1000, 100000))]
    return [kind, str((now + rng.randint(1000, 100000)) * 1000)]


def set_command(rng):
    cmd = ["SET", random_key(rng), random_value(rng)]
    options = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        roll = rng.random()
        if roll < 0.2:
            options.append(rng.choice(["NX", "XX", "nx", "xx"]))
        elif roll < 0.35:
            options.append(rng.choice(["GET", "get"]))
        elif roll < 0.5:
            options.append("KEEPTTL")
        elif roll < 0.9:
            options += expire_option(rng, True)
        else:
            options.append(rng.choice(["PERSIST", "BOGUS", "EX", "PX"]))  # syntax errors
    return cmd + options


def getex_command(rng):
    cmd = ["GETEX", random_key(rng)]
    for _ in range(rng.choice([0, 1, 1, 2])):
        roll = rng.random()
        if roll < 0.25:
            cmd.append("PERSIST")
        elif roll < 0.85:
            cmd += expire_option(rng, False)
        else:
            cmd.append(rng.choice(["NX", "KEEPTTL", "GET", "EX"]))
    return cmd


def mset_command(rng, name):
    pairs = []
    for _ in range(rng.randint(1, 4)):
        pairs += [random_key(rng), random_value(rng)]
    if rng.random() < 0.1:
        pairs.pop()  # odd number of arguments
    return [name] + pairs


def random_command(rng):
    key = random_key(rng)
    roll = rng.randrange(24)
    if roll == 0:
        return ["GET", key]
    if roll in (1, 2):
        return set_command(rng)
    if roll == 3:
        return ["SETNX", key, random_value(rng)]
    if roll == 4:
        seconds = str(rng.randint(1000, 100000)) if rng.random() < 0.8 else rng.choice(TIME_ARGS)
        return ["SETEX", key, seconds, random_value(rng)]
    if roll == 5:
        ms = str(rng.randint(10**6, 10**8)) if rng.random() < 0.8 else rng.choice(TIME_ARGS)
        return ["PSETEX", key, ms, random_value(rng)]
    if roll == 6:
        return ["GETSET", key, random_value(rng)]
    if roll == 7:
        return ["GETDEL", key]
    if roll == 8:
        return getex_command(rng)
    if roll == 9:
        return ["MGET"] + [random_key(rng) for _ in range(rng.randint(1, 5))]
    if roll == 10:
        return mset_command(rng, "MSET")
    if roll == 11:
        return mset_command(rng, "MSETNX")
    if roll == 12:
        return ["APPEND", key, random_value(rng)]
    if roll == 13:
        return ["STRLEN", key]
    if roll == 14:
        offset = str(rng.randint(0, 40)) if rng.random() < 0.8 else rng.choice(
            INT_EDGES + ["536870912", "536870911", "-5"])
        value = random_value(rng)
        if offset in ("536870911",) and value:
            value = ""  # a 512 MB string on both servers is not worth the memory
        return ["SETRANGE", key, offset, value]
    if roll == 15:
        return ["GETRANGE", key, random_int(rng), random_int(rng)]
    if roll == 16:
        return ["INCR", key]
    if roll == 17:
        return ["DECR", key]
    if roll == 18:
        return ["INCRBY", key, random_int(rng)]
    if roll == 19:
        return ["DECRBY", key, random_int(rng)]
    if roll == 20:
        roll = rng.random()
        if roll < 0.5:
            by = str(rng.randint(-40, 40) / 4)
        elif roll < 0.85:
            by = f"{rng.uniform(-1000, 1000):.{rng.randint(0, 6)}f}"
        else:
            by = rng.choice(["abc", "", "inf", "-inf", "nan", "1e4932", " 1", "1e3", "5.0e2",
                             "0.1", "-0.1", "1e-20", "123456789012345678901234567890"])
        return ["INCRBYFLOAT", key, by]
    if roll == 21:
        return [rng.choice(["SET", "GET", "GETEX", "MGET", "APPEND", "INCR"])]  # arity errors
    if roll == 22:
        return ["DEL", key]
    return ["SADD", "set0", "m"] if rng.random() < 0.5 else ["HSET", "hash0", "f", "v"]


class StringDifferentialTest(unittest.TestCase):
    def test_random_string_commands_match_redis(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(2**32)))
        print(f"test_diff_string seed={seed} (replay with LATTICE_SEED={seed})", file=sys.stderr)
        rng = random.Random(seed)
        commands = [["SADD", "set0", "a", "b"], ["HSET", "hash0", "f", "v"]]
        commands += [random_command(rng) for _ in range(COMMANDS)]
        # Finally read every key back, so that a difference in stored state shows too.
        # (Not DBSIZE: a deleted key that had increments keeps an invisible tombstone entry that
        # the keyspace still counts; see docs/commands/string.md.)
        final_keys = KEYS + TYPED + ["missing"]
        commands += [["GET", k] for k in final_keys] + [["MGET"] + final_keys]
        commands += [["EXISTS", k] for k in final_keys]
        with Differential() as diff:
            diff.check(commands, seed=seed)


if __name__ == "__main__":
    unittest.main()
