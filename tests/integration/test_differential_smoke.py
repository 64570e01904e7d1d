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


if __name__ == "__main__":
    unittest.main()
