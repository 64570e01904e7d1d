"""OBJECT ENCODING of lists as Valkey 9 converts them (redis-server 7.0 here reports quicklist
for every list, so the expectations are Valkey's, not a differential): a list becomes a quicklist
when a write takes it past list-max-listpack-size and a listpack again only within half of it,
so a list oscillating around the limit keeps one encoding.
"""
import unittest

from harness import ServerTestCase


class ListEncoding(ServerTestCase):

    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()
        self.r.config_set("list-max-listpack-size", "-2")

    def tearDown(self):
        self.r.config_set("list-max-listpack-size", "-2")

    def encoding(self, key="l"):
        return self.r.object("encoding", key)

    def test_size_limit_converts_once_each_way(self):
        value = "v" * 100  # 103 listpack bytes: 79 fit 8 KB, 39 fit half of it
        self.r.rpush("l", *[value] * 79)
        self.assertEqual(self.encoding(), b"listpack")
        self.r.rpush("l", value)
        self.assertEqual(self.encoding(), b"quicklist")
        for _ in range(20):  # around the limit: no conversion back
            self.r.rpop("l")
            self.assertEqual(self.encoding(), b"quicklist")
            self.r.rpush("l", value)
        self.r.ltrim("l", 0, 39)  # 40 elements: still above half the limit
        self.assertEqual(self.encoding(), b"quicklist")
        self.r.lpop("l")
        self.assertEqual(self.r.llen("l"), 39)
        self.assertEqual(self.encoding(), b"listpack")
        self.r.rpush("l", *[value] * 40)  # 79 again: fits, stays a listpack
        self.assertEqual(self.encoding(), b"listpack")

    def test_count_limit_halves_the_count(self):
        # Pops from the tail, so Valkey's quicklist is down to one node when it may convert back.
        self.r.config_set("list-max-listpack-size", "4")
        self.r.rpush("l", "a", "b", "c", "d")
        self.assertEqual(self.encoding(), b"listpack")
        self.r.rpush("l", "e")
        self.assertEqual(self.encoding(), b"quicklist")
        self.r.rpop("l")
        self.r.rpop("l")
        self.assertEqual(self.r.llen("l"), 3)
        self.assertEqual(self.encoding(), b"quicklist")
        self.r.lset("l", 0, "x")
        self.r.rpop("l")
        self.assertEqual(self.encoding(), b"listpack")
        self.assertEqual(self.r.lrange("l", 0, -1), [b"x", b"b"])

    def test_a_list_created_past_the_limit_is_a_quicklist(self):
        self.r.rpush("big", *["x" * 6000, "y" * 6000])
        self.assertEqual(self.encoding("big"), b"quicklist")
        self.r.rpush("ints", *range(1000))  # integers: 2 or 3 listpack bytes each
        self.assertEqual(self.encoding("ints"), b"listpack")
        self.r.lmove("big", "ints", "LEFT", "RIGHT")
        self.assertEqual(self.encoding("ints"), b"quicklist")
        self.assertEqual(self.encoding("big"), b"quicklist")  # 6 KB: above half of 8 KB
        self.r.rpop("big")
        self.assertIsNone(self.encoding("big"))


if __name__ == "__main__":
    unittest.main()
