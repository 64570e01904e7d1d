"""The differential harness itself: identical replies pass, a difference is reported."""
import unittest

from differential import Differential


class DifferentialSmokeTest(unittest.TestCase):
    def test_same_replies_pass_and_a_difference_is_caught(self):
        with Differential() as diff:
            diff.check([["PING"], ["ECHO", "x"], ["SELECT", "99"], ["NOSUCH", "a"]], seed=0)
            with self.assertRaises(AssertionError) as raised:
                diff.check([["INFO", "server"]], seed=7)  # the servers describe themselves
            self.assertIn("seed=7 command #0", str(raised.exception))


class GetKeysDifferentialTest(unittest.TestCase):
    def test_command_getkeys_matches_redis_for_every_shared_command(self):
        """Key extraction drives cluster routing: compare COMMAND GETKEYS on sample calls."""
        samples = [
            ["GET", "k"], ["SET", "k", "v"], ["MSET", "a", "1", "b", "2"], ["MGET", "a", "b", "c"],
            ["DEL", "a", "b"], ["RENAME", "a", "b"], ["COPY", "a", "b"], ["HSET", "h", "f", "v"],
            ["SADD", "s", "m"], ["SMOVE", "a", "b", "m"], ["SINTERSTORE", "d", "a", "b"],
            ["SINTERCARD", "2", "a", "b", "LIMIT", "1"], ["ZADD", "z", "1", "m"],
            ["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"], ["ZINTER", "2", "a", "b"],
            ["ZDIFF", "3", "a", "b", "c"], ["ZINTERCARD", "2", "a", "b"],
            ["ZDIFFSTORE", "d", "1", "a"], ["ZRANGESTORE", "d", "s", "0", "-1"],
            ["WATCH", "a", "b"], ["EXPIRE", "k", "10"], ["ZUNION", "0", "a"],
            ["ZUNION", "5", "a"], ["NOSUCH", "a"],  # GETKEYS PING: 7.0 has another arity
        ]
        with Differential() as diff:
            diff.check([["COMMAND", "GETKEYS", *sample] for sample in samples], seed=0)


if __name__ == "__main__":
    unittest.main()
