"""Differential test of the HyperLogLog family: a seeded random stream of PFADD, PFCOUNT (one
and several keys), PFMERGE, PFDEBUG and the string commands that see an HLL as bytes (GET, SET
of a copy, APPEND that corrupts one, STRLEN), sent to lattice-server and to Debian's
redis-server, every reply compared exactly: GET returns the same bytes (sparse opcodes, dense
registers, the cached cardinality), PFCOUNT the same estimate.

Replay a failure with LATTICE_SEED=<seed> (the seed is printed and named in the failure).
"""
import os
import random
import time
import unittest

from differential import Differential

HLLS = ["h0", "h1", "h2", "{h}3"]
KEYS = HLLS + ["str", "set", "missing", "copy"]


def element(rng, universe):
    return f"e{rng.randrange(universe)}"


def gen(rng, universe):
    k = rng.choice(HLLS)
    r = rng.randrange(100)
    if r < 45:
        return ["PFADD", k] + [element(rng, universe) for _ in range(rng.randrange(0, 12))]
    if r < 60:
        return ["PFCOUNT", k]
    if r < 66:
        return ["PFCOUNT"] + rng.sample(KEYS, rng.randrange(1, 4))
    if r < 72:
        return ["PFMERGE", rng.choice(HLLS + ["copy"])] + rng.sample(HLLS + ["missing"],
                                                                    rng.randrange(0, 3))
    if r < 80:
        return ["GET", rng.choice(KEYS)]
    if r < 84:
        return ["PFDEBUG", rng.choice(["ENCODING", "DECODE", "encoding"]), rng.choice(KEYS)]
    if r < 86:
        return ["PFDEBUG", rng.choice(["TODENSE", "GETREG"]), k]
    if r < 88:
        return ["PFADD", rng.choice(["str", "set"]), "x"]
    if r < 90:
        return ["PFCOUNT", rng.choice(["str", "set"])]
    if r < 92:
        return ["STRLEN", k]
    if r < 94:
        return ["TYPE", rng.choice(KEYS)]
    if r < 96:
        return ["DEL", k]
    return rng.choice([["PFADD"], ["PFMERGE"], ["PFDEBUG", "NOPE", k], ["PFDEBUG", "GETREG"],
                       ["PFDEBUG", "ENCODING", "missing"], ["SET", "str", "HYLL"],
                       ["SET", "str", "HYLL\x01\x00\x00\x00" + "\x00" * 8 + "\x80"],
                       ["SET", "str", "plain"]])


class HllDifferentialTest(unittest.TestCase):
    def test_random_hll_stream_matches_redis(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 32)))
        count = int(os.environ.get("LATTICE_DIFF_COMMANDS", "4000"))
        print(f"\ntest_diff_hll seed={seed} commands={count}")
        rng = random.Random(seed)
        commands = [["SADD", "set", "m"], ["SET", "str", "plain"]]
        for _ in range(count):
            commands.append(gen(rng, rng.choice([50, 3000, 100000])))
        started = time.monotonic()
        with Differential() as diff:
            diff.check(commands, seed=seed)
            diff.check([["GET", k] for k in KEYS] + [["PFCOUNT", k] for k in HLLS], seed=seed)
        self.assertLess(time.monotonic() - started, 120, f"seed={seed}: too slow")

    def test_dense_promotion_copy_and_corruption(self):
        with Differential() as diff:
            commands = [["PFADD", "s", f"x{i}"] for i in range(2500)]  # sparse -> dense
            commands += [["PFDEBUG", "ENCODING", "s"], ["GET", "s"], ["PFCOUNT", "s"],
                         ["GET", "s"], ["PFADD", "s", "one more", "and another"]]
            diff.check(commands)
            value = diff.a.call("GET", "s")
            # SET of the copied bytes is a HyperLogLog on both.
            diff.check([["SET", "c", value], ["PFADD", "c", "new"], ["PFCOUNT", "c", "s"],
                        ["GET", "c"], ["PFMERGE", "m", "c", "s"], ["GET", "m"],
                        ["APPEND", "c", "x"], ["PFCOUNT", "c"], ["PFADD", "c", "y"],
                        ["SETRANGE", "s", "4", "\x07"], ["PFCOUNT", "s"],
                        ["PFADD", "p", "a"], ["PFDEBUG", "DECODE", "p"],
                        ["PFADD", "big", *[f"v{i}" for i in range(40)]],
                        ["PFDEBUG", "DECODE", "big"], ["PFDEBUG", "GETREG", "big"],
                        ["PFDEBUG", "ENCODING", "big"], ["GET", "big"],
                        ["PFSELFTEST"], ["CONFIG", "SET", "hll-sparse-max-bytes", "30"],
                        ["PFADD", "tiny", *[f"t{i}" for i in range(6)]],
                        ["PFDEBUG", "ENCODING", "tiny"], ["GET", "tiny"]])


if __name__ == "__main__":
    unittest.main()
