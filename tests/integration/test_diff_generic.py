"""Differential test of the generic keyspace commands against Debian's redis-server 7.0.

A seeded random stream (LATTICE_SEED, or a random seed that is printed) of DEL, UNLINK, EXISTS,
TOUCH, TYPE, RENAME(NX), COPY, MOVE, RANDOMKEY, SWAPDB, SCAN, KEYS, the EXPIRE and TTL families,
PERSIST, OBJECT and DEBUG DIGEST(-VALUE), mixed with writes of every type, wrong arguments and
edge values. Where the two servers differ for documented reasons the stream avoids the case or
normalises the reply:
- SCAN cursors are implementation-specific: SCAN runs with COUNT 1000 (one page) and unordered.
- Times relative to "now" differ by the pipeline delay: TTL/PTTL and relative EXPIRETIMEs are
  compared as -2 / -1 / positive; GT/LT run only with absolute times far apart.
- Sets hold integers only (Redis 7.0 has no listpack sets; both choose intset).
- DEBUG DIGEST runs only after PERSIST of every key (Lattice also hashes expiry times).
- OBJECT HELP's last line is Valkey's newer "Print this help." (7.0: "Prints").
- Valkey 9 differences from 7.0 (SCAN TYPE of an unknown name, cursor "-1", CLUSTER KEYSLOT with
  cluster disabled) are left out of the stream.
"""
import os
import random
import time
import unittest

from differential import Differential

KEYS = ["k0", "k1", "k2", "k3", "{t}a", "{t}b", "x:1", "x:22"]
DBS = 4
COMMANDS = 6000


class DebugDifferential(Differential):
    """Both servers with DEBUG enabled (DEBUG DIGEST is part of the comparison)."""

    def __enter__(self):
        import subprocess
        real_popen = subprocess.Popen

        def popen(args, **kwargs):
            if args and args[0] == "redis-server":
                args = list(args) + ["--enable-debug-command", "yes"]
            return real_popen(args, **kwargs)
        subprocess.Popen = popen
        try:
            return super().__enter__()
        finally:
            subprocess.Popen = real_popen


class Generator:
    def __init__(self, rng, base_s):
        self.rng = rng
        self.base_s = base_s  # absolute times are base + large distinct offsets

    def key(self):
        return self.rng.choice(KEYS)

    def abs_ms(self):
        return (self.base_s + self.rng.choice([1000, 2000, 3000, 50000])) * 1000 + \
            self.rng.choice([0, 7, 999])

    def value(self):
        r = self.rng
        return r.choice(["1", "-7", "9999", "10000", "123456789012", "abc", "", "x" * 44,
                         "y" * 45, "12345678901234567890", "007", str(r.randint(-99, 99))])

    def write(self):
        r, k = self.rng, self.key()
        kind = r.randrange(6)
        if kind == 0:
            return ["SET", k, self.value()]
        if kind == 1:
            return ["SADD", k] + [str(r.randint(-5, 600)) for _ in range(r.randint(1, 4))]
        if kind == 2:
            return ["HSET", k] + sum([[f"f{r.randint(0, 9)}", self.value()]
                                      for _ in range(r.randint(1, 3))], [])
        if kind == 3:
            member = r.choice(["m1", "m2", "m3", "z" * 70])
            return ["ZADD", k, str(r.choice([1, 2, -3, 0.5, 1.5])), member]
        if kind == 4:
            return ["ZADD", k] + sum([["%d" % i, f"mem{i}"] for i in range(130)], [])
        return ["SET", k, self.value(), "EX", str(r.choice([100, 5000]))]

    def expire(self):
        r, k = self.rng, self.key()
        kind = r.randrange(8)
        if kind == 0:
            # PEXPIRE in ms too: a TTL short enough to run out during the stream would expire at
            # different moments in the two servers (the stream runs on each in turn).
            command = r.choice(["EXPIRE", "PEXPIRE"])
            ttl = r.choice([100, 5000, 300000, -1, 0])
            if command == "PEXPIRE" and ttl > 0:
                ttl *= 1000
            return [command, k, str(ttl)] + r.choice([[], ["NX"], ["XX"]])
        if kind == 1:
            cond = r.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["XX", "GT"], ["lt"]])
            return ["PEXPIREAT", k, str(self.abs_ms())] + cond
        if kind == 2:
            cond = r.choice([[], ["NX"], ["GT"], ["LT"]])
            return ["EXPIREAT", k, str(self.abs_ms() // 1000)] + cond
        if kind == 3:
            return ["PEXPIREAT", k, r.choice(["1", "0", "-5"])]
        if kind == 4:
            return [r.choice(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]), k,
                    r.choice(["9223372036854775807", "-9223372036854775808", "abc", "1.5",
                              "9223372036854775", "-9223372036854775"])]
        if kind == 5:
            return ["EXPIRE", k, "10", r.choice(["NX XX", "GT LT", "NX GT", "FOO"]).split()[0],
                    r.choice(["XX", "LT", "GT", "BAR"])]
        if kind == 6:
            return ["PERSIST", k]
        return [r.choice(["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]), k]

    def keyspace(self):
        r, k = self.rng, self.key()
        kind = r.randrange(16)
        if kind == 0:
            return [r.choice(["DEL", "UNLINK", "EXISTS", "TOUCH"])] + \
                [self.key() for _ in range(r.randint(1, 4))]
        if kind == 1:
            return ["TYPE", k]
        if kind == 2:
            return [r.choice(["RENAME", "RENAMENX"]), k, self.key()]
        if kind == 3:
            extra = r.choice([[], ["REPLACE"], ["DB", str(r.randrange(DBS))],
                              ["DB", str(r.randrange(DBS)), "REPLACE"], ["DB"], ["DB", "x"],
                              ["DB", "99"], ["FOO"]])
            return ["COPY", k, self.key()] + extra
        if kind == 4:
            return ["MOVE", k, r.choice([str(r.randrange(DBS)), "99", "-1", "x"])]
        if kind == 5:
            return ["RANDOMKEY"]
        if kind == 6:
            return ["SWAPDB", str(r.randrange(DBS)), r.choice([str(r.randrange(DBS)), "x", "99"])]
        if kind == 7:
            opts = r.choice([[], ["MATCH", "k*"], ["MATCH", "{t}?"], ["TYPE", "string"],
                             ["TYPE", r.choice(["hash", "set", "zset", "list", "SET"])],
                             ["MATCH", "x:*", "TYPE", "zset"], ["MATCH", "*"]])
            return ["SCAN", "0", "COUNT", "1000"] + opts
        if kind == 8:
            return ["SCAN"] + r.choice([["abc"], ["0", "COUNT", "0"], ["0", "COUNT", "x"],
                                        ["0", "COUNT"], ["0", "FOO", "1"], ["1.5"]])
        if kind == 9:
            return ["KEYS", r.choice(["*", "k?", "{t}*", "x:[12]*", "*2*", "[", "\\k*"])]
        if kind == 10:
            return ["OBJECT", r.choice(["ENCODING", "REFCOUNT", "FREQ", "IDLETIME"]), k]
        if kind == 11:
            return r.choice([["OBJECT", "HELP"], ["OBJECT", "FOO", k], ["OBJECT"],
                             ["OBJECT", "ENCODING"], ["TYPE"], ["DEL"], ["RENAME", k],
                             ["MOVE", k], ["COPY", k], ["SWAPDB", "0"], ["KEYS"], ["TTL"],
                             ["PERSIST"], ["EXPIRE", k], ["RANDOMKEY", "x"], ["SCAN"]])
        if kind == 12:
            return ["SELECT", str(r.randrange(DBS))]
        return self.write() if kind < 15 else self.expire()

    def next(self):
        return self.keyspace() if self.rng.random() < 0.6 else self.expire()

    def checkpoint(self):
        """PERSIST every key of every db, then compare digests exactly."""
        commands = []
        for db in range(DBS):
            commands.append(["SELECT", str(db)])
            commands += [["PERSIST", k] for k in KEYS]
            commands.append(["DEBUG", "DIGEST-VALUE"] + KEYS)
        commands.append(["DEBUG", "DIGEST"])
        commands.append(["SELECT", "0"])
        return commands


def sign(value):
    if isinstance(value, int) and value > 0:
        return "positive"
    return value


def normalize_for(absolute_ms):
    def normalize(command, reply):
        name = str(command[0]).upper()
        if name in ("TTL", "PTTL"):
            return sign(reply)
        if name in ("EXPIRETIME", "PEXPIRETIME"):
            known = reply in absolute_ms or (isinstance(reply, int) and reply * 1000 in
                                             {ms // 1000 * 1000 for ms in absolute_ms})
            return reply if known or not isinstance(reply, int) else sign(reply)
        if name == "RANDOMKEY":
            return reply is None
        sub = str(command[1]).upper() if len(command) > 1 else ""
        if name == "OBJECT" and sub == "HELP" and isinstance(reply, list):
            return reply[:-1]  # Valkey 8+ says "Print this help.", Redis 7.0 "Prints this help."
        if name == "OBJECT" and sub == "REFCOUNT" and isinstance(reply, int):
            return "refcount"  # depends on how Redis built the object (shared integers)
        if name == "OBJECT" and sub == "IDLETIME":
            return 0 if isinstance(reply, int) else reply
        return reply
    return normalize


class GenericDifferentialTest(unittest.TestCase):
    def test_random_stream_matches_redis(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 32)))
        print(f"\ntest_diff_generic seed={seed} (replay with LATTICE_SEED={seed})")
        rng = random.Random(seed)
        base_s = int(time.time())
        gen = Generator(rng, base_s)
        absolute_ms = set()
        for offset in (1000, 2000, 3000, 50000):
            for extra in (0, 7, 999):
                ms = (base_s + offset) * 1000 + extra
                absolute_ms.update({ms, ms // 1000, (ms // 1000) * 1000})
        commands = [["FLUSHALL"]]
        while len(commands) < COMMANDS:
            commands.append(gen.next())
            if rng.random() < 0.01:
                commands += gen.checkpoint()
        commands += gen.checkpoint()
        unordered = {"KEYS", "SCAN"}
        with DebugDifferential("--enable-debug-command", "yes") as diff:
            diff.check(commands, seed=seed, unordered=unordered,
                       normalize=normalize_for(absolute_ms))


if __name__ == "__main__":
    unittest.main()
