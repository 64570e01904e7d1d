"""Differential test of the set family: a seeded random stream of set commands (SADD ... SSCAN,
with wrong types, bad arguments and edge values) sent to lattice-server and to Debian's
redis-server 7.0, every reply compared.

Randomness is compared by shape: SRANDMEMBER replies by kind and length. SPOP that picks at
random (no count, or a count below the size) only runs on POP_KEY, whose members are all distinct
("u<n>", never reused), so the two servers' differing choices never change another reply; that
key is left out of every content comparison and only its cardinality is compared. SPOP with a
count above any set's size is deterministic (all members, key deleted) and runs on every key.
SSCAN uses cursor 0 with a COUNT large enough that Redis 7.0's hashtable sets come back whole.

Replay a failure with LATTICE_SEED=<seed> (the seed is printed and named in the failure).
"""
import os
import random
import time
import unittest

from differential import Differential

SETS = ["s0", "s1", "s2", "s3", "{s}4"]
KEYS = SETS + ["str", "hash", "missing", "big"]
# "missing" is never written: SRANDMEMBER with a huge negative count is only safe there (Redis
# would build that reply on an existing set).
WRITABLE = [k for k in KEYS if k != "missing"]
POP_KEY = "pop"
MEMBERS = ["a", "b", "c", "d", "e", "f", "1", "2", "3", "-4", "", "é", "a b", "A"]
UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "SPOP"}
BIG_MEMBERS = [f"big{i}" for i in range(300)]


def member(rng):
    return rng.choice(MEMBERS)


def members(rng, low=1, high=4):
    return [member(rng) for _ in range(rng.randrange(low, high))]


def some_keys(rng, low=1, high=4):
    return [rng.choice(KEYS) for _ in range(rng.randrange(low, high))]


def gen_spop(rng, k):
    r = rng.random()
    if r < 0.5:
        return ["SPOP", k, rng.choice(["1000", "9223372036854775807", "0"])]
    if r < 0.8:
        return ["SPOP", k, rng.choice(["-1", "abc", "", "9223372036854775808", "1.5", "-0"])]
    return ["SPOP", k, "1", "2"] if r < 0.9 else ["SPOP"]


def gen_srandmember(rng, k):
    r = rng.random()
    if r < 0.3:
        return ["SRANDMEMBER", k]
    if r < 0.8:
        return ["SRANDMEMBER", k, str(rng.randrange(-20, 20))]
    count = rng.choice(["abc", "-9223372036854775808", "9223372036854775808", "1000", "0"])
    if k == "missing" and rng.random() < 0.5:
        count = "-9223372036854775807"  # safe only where there is nothing to repeat
    return ["SRANDMEMBER", k, count] + (["x"] if rng.random() < 0.1 else [])


def gen_sintercard(rng):
    keys = some_keys(rng)
    r = rng.random()
    numkeys = str(len(keys))
    if r < 0.15:
        numkeys = rng.choice(["0", "-1", "abc", str(len(keys) + 1), "9223372036854775807"])
    cmd = ["SINTERCARD", numkeys] + keys
    if rng.random() < 0.5:
        cmd += [rng.choice(["LIMIT", "limit"]),
                rng.choice(["0", "1", "2", "5", "-1", "x", "100"])]
    if rng.random() < 0.1:
        cmd += rng.choice([["LIMIT"], ["bogus", "1"], ["LIMIT", "1", "LIMIT", "2"]])
    return cmd


def gen_sscan(rng, k):
    # Not "", " 0" or "-1": Redis 7.0 parses cursors with strtoul, Valkey 9 with string2ull.
    cursor = rng.choice(["0", "0", "0", "00", "+0", "-0", "abc", "18446744073709551616", "-",
                         "1.0", "0x1"])
    cmd = ["SSCAN", k, cursor]
    if cursor in ("0", "00", "+0", "-0"):
        cmd += ["COUNT", rng.choice(["1000", "5000"])]
    for _ in range(rng.randrange(0, 3)):
        opt = rng.randrange(6)
        if opt == 0:
            cmd += ["MATCH", rng.choice(["a*", "*", "?", "[a-c]*", "x", "*\\*", "big1*", ""])]
        elif opt == 1:
            cmd += ["COUNT", rng.choice(["0", "-1", "x", "9223372036854775808"])]
        elif opt == 2:
            cmd += [rng.choice(["COUNT", "MATCH"])]
        elif opt == 3:
            cmd += ["TYPE", "set"]
        elif opt == 4:
            cmd += ["bogus"]  # not NOVALUES: Valkey 9 names it in its error, Redis 7.0 does not
        else:
            cmd += ["count", "2000"]
    return cmd


def gen_write(rng):
    k = rng.choice(WRITABLE)
    r = rng.randrange(10)
    if r < 5:
        return [rng.choice(["SADD", "sadd"]), k] + members(rng)
    if r < 8:
        return ["SREM", k] + members(rng)
    if r < 9:
        return ["SMOVE", rng.choice(KEYS), rng.choice(WRITABLE), member(rng)]
    return ["SADD", "big"] + rng.sample(BIG_MEMBERS, rng.randrange(1, 40))


def gen_pop_key(rng, counter):
    r = rng.randrange(6)
    if r < 2:
        n = rng.randrange(1, 5)
        return ["SADD", POP_KEY] + [f"u{counter + i}" for i in range(n)]
    if r < 3:
        return ["SCARD", POP_KEY]
    if r < 4:
        return ["SPOP", POP_KEY]
    if r < 5:
        return ["SPOP", POP_KEY, str(rng.randrange(0, 4))]
    return ["SRANDMEMBER", POP_KEY, str(rng.randrange(-5, 6))]


def gen_read(rng, k):
    r = rng.randrange(8)
    if r < 2:
        return ["SMEMBERS", k]
    if r < 4:
        return ["SISMEMBER", k, member(rng)]
    if r < 5:
        return ["SMISMEMBER", k] + members(rng)
    if r < 7:
        return ["SCARD", k]
    return gen_srandmember(rng, k)


def gen_algebra(rng):
    name = rng.choice(["SINTER", "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
    keys = some_keys(rng)
    if name.endswith("STORE"):
        return [name, rng.choice(WRITABLE)] + keys
    return [name] + keys


def gen_bad(rng, k):
    return rng.choice([
        ["SADD", k], ["SREM", k], ["SMEMBERS"], ["SMEMBERS", k, "x"], ["SISMEMBER", k],
        ["SISMEMBER", k, "a", "b"], ["SMISMEMBER", k], ["SCARD"], ["SCARD", k, "x"],
        ["SRANDMEMBER"], ["SMOVE", k, k], ["SMOVE", k, k, "a", "b"], ["SINTER"], ["SUNION"],
        ["SDIFF"], ["SINTERSTORE", k], ["SUNIONSTORE", k], ["SDIFFSTORE", k], ["SINTERCARD", "1"],
        ["SSCAN", k], ["sadd"], ["SPOP"]])


def generate(rng, count):
    commands = []
    for i in range(count):
        k = rng.choice(KEYS)
        r = rng.randrange(100)
        if r < 30:
            commands.append(gen_write(rng))
        elif r < 50:
            commands.append(gen_read(rng, k))
        elif r < 63:
            commands.append(gen_algebra(rng))
        elif r < 68:
            commands.append(gen_sintercard(rng))
        elif r < 74:
            commands.append(gen_spop(rng, rng.choice(WRITABLE + ["missing"])))
        elif r < 82:
            commands.append(gen_sscan(rng, k))
        elif r < 90:
            commands.append(gen_pop_key(rng, 10 * i))
        elif r < 95:
            commands.append(rng.choice([
                ["SET", "str", "v"], ["HSET", "hash", "f", "v"], ["DEL", rng.choice(KEYS)],
                ["TYPE", k], ["EXISTS", k], ["SET", rng.choice(SETS), "x"]]))
        else:
            commands.append(gen_bad(rng, k))
    return commands


def normalize(command, reply):
    """SRANDMEMBER and SPOP on POP_KEY pick at random: compare the reply's kind and length."""
    if isinstance(reply, tuple):
        return reply
    name = str(command[0]).upper()
    random_pop = name == "SPOP" and len(command) > 1 and command[1] == POP_KEY
    if name == "SRANDMEMBER" or random_pop:
        if isinstance(reply, list):
            return ("list", len(reply), len(set(reply)) if len(command) > 2 and
                    not str(command[2]).startswith("-") else None)
        return ("single", reply is None)
    if name == "SSCAN" and isinstance(reply, list) and len(reply) == 2:
        return [reply[0], sorted(reply[1])]
    return reply


class SetDifferentialTest(unittest.TestCase):
    def test_random_set_stream_matches_redis(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 32)))
        count = int(os.environ.get("LATTICE_DIFF_COMMANDS", "8000"))
        print(f"\ntest_diff_set seed={seed} commands={count}")
        rng = random.Random(seed)
        commands = generate(rng, count)
        started = time.monotonic()
        with Differential() as diff:
            diff.check(commands, seed=seed, unordered=UNORDERED, normalize=normalize)
            # The final state must agree as well (the SPOP key by cardinality only).
            diff.check([["SMEMBERS", k] for k in KEYS] + [["SCARD", POP_KEY]], seed=seed,
                       unordered=True)
        self.assertLess(time.monotonic() - started, 60, f"seed={seed}: too slow")


if __name__ == "__main__":
    unittest.main()
