"""Differential test of the sorted-set family: a seeded random stream of sorted-set commands
(with wrong types, bad arguments and edge values) sent to lattice-server and to Debian's
redis-server 7.0, every reply compared.

Documented differences handled here:
- Doubles: Redis 7.0 prints %.17g, Valkey 8+/Lattice the shortest round-trip text, so every reply
  string that parses as a number is compared as a float (to 12 digits: the summation order of
  equal-sized ZUNION/ZINTER inputs is unspecified).
- ZRANDMEMBER is random: compared by shape (nil or not, length), errors exactly.
- Valkey-only syntax (ZRANK/ZREVRANK WITHSCORE, ZSCAN NOSCORES) is left to test_zset.py.
- Lex commands run on keys whose scores are all equal (Valkey leaves mixed scores unspecified).
Sets stay under 128 members, so Redis keeps them as listpacks and ZSCAN returns them whole.

Replay a failure with LATTICE_SEED=<seed> (the seed is printed and named in the failure).
"""
import os
import random
import time
import unittest

from differential import Differential

SCORE_KEYS = ["z0", "z1", "z2", "{z}3"]
LEX_KEYS = ["l0", "l1"]
OTHER_KEYS = ["str", "set", "missing"]
MEMBERS = ["a", "b", "c", "d", "e", "f", "g", "h", "", "12", "-1", "ab", "abc", "B", "é", "a b"]
GOOD_SCORES = ["0", "1", "2", "-1", "3", "1.5", "-2.25", "0.1", "10", "inf", "-inf", "+inf",
               "1e3", "-0", "100", "5", "7", "0.3333333333333333", "2e-3"]
BAD_SCORES = ["nan", "abc", "", " 1", "1e400", "1x", "--1", "inf inf"]


def score(rng):
    return rng.choice(BAD_SCORES) if rng.random() < 0.04 else rng.choice(GOOD_SCORES)


def score_bound(rng):
    kind = rng.randrange(10)
    if kind == 0:
        return rng.choice(["x", "nan", "(nan", "((1", "[1"])
    value = rng.choice(["-inf", "+inf", "inf", "0", "1", "2", "3", "1.5", "-1", "10", "100", "",
                        "5", "0.1", " 2", "1e400"])
    return ("(" if rng.random() < 0.3 else "") + value


def lex_bound(rng):
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice(["a", "", "+a", "-a", "x"])
    if kind < 3:
        return rng.choice(["-", "+"])
    return rng.choice(["(", "["]) + rng.choice(MEMBERS + ["a", "b", "c", "zz", ""])


def index(rng):
    return str(rng.choice([0, 1, 2, -1, -2, 3, 5, 10, -10, 100, -100])) if rng.random() < 0.97 \
        else rng.choice(["x", "9223372036854775807", "-9223372036854775808", "1.5"])


def any_key(rng):
    r = rng.random()
    if r < 0.6:
        return rng.choice(SCORE_KEYS)
    if r < 0.8:
        return rng.choice(LEX_KEYS)
    return rng.choice(OTHER_KEYS)


def score_key(rng):
    # Writes never create "missing" or "str", which the lex commands read.
    return rng.choice(SCORE_KEYS) if rng.random() < 0.9 else rng.choice(["str", "set"])


def lex_key(rng):
    return rng.choice(LEX_KEYS) if rng.random() < 0.9 else rng.choice(OTHER_KEYS)


def gen_zadd(rng):
    if rng.random() < 0.3:  # equal scores on the lex keys
        pairs = []
        for _ in range(rng.randrange(1, 4)):
            pairs += ["0", rng.choice(MEMBERS)]
        return ["ZADD", lex_key(rng)] + rng.sample(["NX", "XX", "CH"], rng.randrange(2)) + pairs
    flags = [f for f in ["NX", "XX", "GT", "LT", "CH", "INCR"] if rng.random() < 0.15]
    pairs = []
    for _ in range(1 if "INCR" in flags and rng.random() < 0.8 else rng.randrange(1, 5)):
        pairs += [score(rng), rng.choice(MEMBERS)]
    if rng.random() < 0.03:
        pairs = pairs[:-1]
    return ["ZADD", score_key(rng)] + flags + pairs


def gen_range(rng):
    key = any_key(rng)
    kind = rng.randrange(3)
    if kind == 0 or (kind == 2 and key in SCORE_KEYS):
        args = [index(rng), index(rng)]
        opts = []
        if rng.random() < 0.2:
            opts.append("REV")
    elif kind == 1:
        args = [score_bound(rng), score_bound(rng)]
        opts = ["BYSCORE"] + (["REV"] if rng.random() < 0.4 else [])
    else:
        key = lex_key(rng)
        args = [lex_bound(rng), lex_bound(rng)]
        opts = ["BYLEX"] + (["REV"] if rng.random() < 0.4 else [])
    if rng.random() < 0.3:
        opts += ["LIMIT", index(rng), index(rng)]
    if rng.random() < 0.4:
        opts.append("WITHSCORES")
    if rng.random() < 0.03:
        opts.append(rng.choice(["BOGUS", "LIMIT", "BYSCORE"]))
    rng.shuffle(opts)
    if rng.random() < 0.2:
        dst = rng.choice(SCORE_KEYS + ["dst"])
        return ["ZRANGESTORE", dst, key] + args + [o for o in opts if o != "WITHSCORES"]
    return ["ZRANGE", key] + args + opts


def gen_old_range(rng):
    name = rng.choice(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX",
                       "ZREVRANGE"])
    if name == "ZREVRANGE":
        cmd = [name, any_key(rng), index(rng), index(rng)]
    elif "LEX" in name:
        cmd = [name, lex_key(rng), lex_bound(rng), lex_bound(rng)]
    else:
        cmd = [name, any_key(rng), score_bound(rng), score_bound(rng)]
    if "LEX" not in name and rng.random() < 0.4:
        cmd.append("WITHSCORES")
    if name != "ZREVRANGE" and rng.random() < 0.3:
        cmd += ["LIMIT", index(rng), index(rng)]
    return cmd


def gen_setop(rng):
    name = rng.choice(["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE",
                       "ZINTERCARD"])
    n = rng.randrange(1, 4)
    keys = [any_key(rng) if rng.random() < 0.3 else rng.choice(SCORE_KEYS) for _ in range(n)]
    numkeys = str(n) if rng.random() < 0.95 else rng.choice(["0", "-1", "x", str(n + 2)])
    cmd = [name] + ([rng.choice(SCORE_KEYS + ["dst"])] if name.endswith("STORE") else [])
    cmd += [numkeys] + keys
    if name not in ("ZDIFF", "ZDIFFSTORE", "ZINTERCARD"):
        if rng.random() < 0.4:
            cmd += ["WEIGHTS"] + [rng.choice(["1", "2", "0", "-1", "0.5", "inf", "x"])
                                  for _ in range(n if rng.random() < 0.95 else n - 1)]
        if rng.random() < 0.4:
            cmd += ["AGGREGATE", rng.choice(["SUM", "MIN", "MAX", "sum", "avg"])]
    if name == "ZINTERCARD" and rng.random() < 0.5:
        cmd += ["LIMIT", rng.choice(["0", "1", "2", "-1", "x"])]
    if not name.endswith("STORE") and name != "ZINTERCARD" and rng.random() < 0.5:
        cmd.append("WITHSCORES")
    return cmd


def gen_other(rng):
    kind = rng.randrange(16)
    key = any_key(rng)
    member = rng.choice(MEMBERS)
    if kind == 0:
        return ["ZINCRBY", score_key(rng), score(rng), member]
    if kind == 1:
        return ["ZSCORE", key, member]
    if kind == 2:
        return ["ZMSCORE", key] + rng.sample(MEMBERS, rng.randrange(1, 4))
    if kind == 3:
        return ["ZCARD", key]
    if kind == 4:
        return [rng.choice(["ZRANK", "ZREVRANK"]), key, member]
    if kind == 5:
        return ["ZCOUNT", key, score_bound(rng), score_bound(rng)]
    if kind == 6:
        return ["ZLEXCOUNT", lex_key(rng), lex_bound(rng), lex_bound(rng)]
    if kind == 7:
        count = [] if rng.random() < 0.4 else [rng.choice(["0", "1", "2", "5", "-1", "x"])]
        return [rng.choice(["ZPOPMIN", "ZPOPMAX"]), key] + count
    if kind == 8:
        return ["ZREM", key] + rng.sample(MEMBERS, rng.randrange(1, 4))
    if kind == 9:
        return ["ZREMRANGEBYRANK", key, index(rng), index(rng)]
    if kind == 10:
        return ["ZREMRANGEBYSCORE", score_key(rng), score_bound(rng), score_bound(rng)]
    if kind == 11:
        return ["ZREMRANGEBYLEX", lex_key(rng), lex_bound(rng), lex_bound(rng)]
    if kind == 12:
        args = [] if rng.random() < 0.3 else [rng.choice(["1", "3", "-3", "0", "100", "x",
                                                          "-9223372036854775808"])]
        if args and rng.random() < 0.4:
            args.append(rng.choice(["WITHSCORES", "WITHSCORES", "bogus"]))
        return ["ZRANDMEMBER", key] + args
    if kind == 13:
        # "-1": Redis 7.0 wraps it with strtoull, Valkey 8+ refuses it (test_zset covers it).
        cmd = ["ZSCAN", key, rng.choice(["0", "0", "0", "x", "18446744073709551616"])]
        if rng.random() < 0.4:
            cmd += ["MATCH", rng.choice(["*", "a*", "?", "[a-c]*", "*b*"])]
        if rng.random() < 0.4:
            cmd += ["COUNT", rng.choice(["1", "10", "0", "x"])]
        return cmd
    if kind == 14:
        return ["DEL", rng.choice(SCORE_KEYS + LEX_KEYS)]
    return ["SADD", "set", member]


def generate(rng, count):
    commands = [["SET", "str", "v"], ["SADD", "set", "a", "b", "x"]]
    while len(commands) < count:
        r = rng.random()
        if r < 0.3:
            commands.append(gen_zadd(rng))
        elif r < 0.5:
            commands.append(gen_range(rng))
        elif r < 0.58:
            commands.append(gen_old_range(rng))
        elif r < 0.68:
            commands.append(gen_setop(rng))
        else:
            commands.append(gen_other(rng))
    return commands


def as_number(value):
    # 12 significant digits: Valkey sums WEIGHTS/AGGREGATE inputs in an order its (unstable)
    # qsort of equal-sized inputs decides, so a sum may differ in the last bit.
    try:
        return float(f"{float(value):.12g}")
    except (TypeError, ValueError, OverflowError):
        return value


def normalize(command, reply):
    """Compares numeric texts as floats; ZRANDMEMBER by shape."""
    name = str(command[0]).upper()
    if name == "ZRANDMEMBER" and not (isinstance(reply, tuple) and reply[0] == "error"):
        if isinstance(reply, list):
            return ("list", len(reply))
        return reply is None
    return _numbers(reply)


def _numbers(reply):
    if isinstance(reply, list):
        return [_numbers(v) for v in reply]
    if isinstance(reply, bytes):
        try:
            return as_number(reply.decode())
        except UnicodeDecodeError:
            return reply
    return reply


class ZSetDifferentialTest(unittest.TestCase):
    def test_random_stream_matches_redis(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 32)))
        count = int(os.environ.get("LATTICE_DIFF_COMMANDS", "6000"))
        print(f"test_diff_zset seed={seed} commands={count}")
        commands = generate(random.Random(seed), count)
        started = time.monotonic()
        with Differential() as diff:
            diff.check(commands, seed=seed, normalize=normalize)
        self.assertLess(time.monotonic() - started, 60, f"seed={seed}: too slow")


if __name__ == "__main__":
    unittest.main()
