"""REPLICAOF over TLS (tls-replication yes): Debian's redis-server listens on a TLS port only,
with certificates made for the test (scripts/gen-test-certs) and client certificates required
(tls-auth-clients yes, its default). A region with tls-replication and the test CA follows it:
the full resync, then the stream. A region that trusts another CA refuses the primary's
certificate and says so in its log; a region without tls-replication never gets the link up
(redis-server closes a plain-text connection on its TLS port).
"""
import os
import random
import unittest

import redis

import tls_certs
from harness import ServerProcess, info_fields, wait_until
from rdb_source import RedisSource
from tls_certs import cert

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_replicaof_tls seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)
setUpModule = tls_certs.make
tearDownModule = tls_certs.remove


def tls_args(ca="ca.crt"):
    return ["--tls-replication", "yes", "--tls-cert-file", cert("node-default.crt"),
            "--tls-key-file", cert("node-default.key"), "--tls-ca-cert-file", cert(ca)]


class TlsSource(RedisSource):
    """redis-server on a TLS port only (its plain port off)."""

    def __init__(self):
        super().__init__()
        self.args = ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", cert("node-default.crt"),
                     "--tls-key-file", cert("node-default.key"),
                     "--tls-ca-cert-file", cert("ca.crt")]

    def client(self, db=0):
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=30, ssl=True,
                           ssl_ca_certs=cert("ca.crt"), ssl_certfile=cert("client.crt"),
                           ssl_keyfile=cert("client.key"), ssl_check_hostname=False)


class ReplicaOfTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.source = TlsSource().start()
        cls.addClassCleanup(cls.source.cleanup)
        rng = random.Random(SEED)
        cls.expected = {f"k:{i}": str(rng.randrange(1 << 30)).encode() for i in range(200)}
        primary = cls.source.client()
        primary.mset(cls.expected)
        primary.hset("h", mapping={"a": "1", "b": "2"})

    def region(self, *args):
        server = ServerProcess(*args)
        self.addCleanup(server.cleanup)
        return server.start()

    def test_a_region_follows_a_tls_primary(self):
        region = self.region(*tls_args())
        c = region.client()
        self.assertTrue(c.execute_command("REPLICAOF", "127.0.0.1", str(self.source.port)))
        wait_until(lambda: info_fields(region, "replication")["master_link_status"] == "up",
                   timeout=30, what="the TLS link to the primary")
        for key, value in self.expected.items():
            self.assertEqual(c.get(key), value, key)
        self.assertEqual(c.hgetall("h"), {b"a": b"1", b"b": b"2"})
        self.source.client().set("after", "over tls")
        wait_until(lambda: c.get("after") == b"over tls", timeout=30, what="the stream over TLS")
        self.assertTrue(c.execute_command("REPLICAOF", "NO", "ONE"))

    def test_a_primary_certificate_of_another_ca_is_refused(self):
        region = self.region(*tls_args(ca="stranger-ca.crt"))
        region.client().execute_command("REPLICAOF", "127.0.0.1", str(self.source.port))
        wait_until(lambda: "certificate verify failed" in region.read_log(), timeout=30,
                   what="the refused certificate in the log")
        self.assertEqual(info_fields(region, "replication")["master_link_status"], "down")
        self.assertEqual(region.client().dbsize(), 0)

    def test_a_plain_region_cannot_follow_a_tls_port(self):
        region = self.region()
        region.client().execute_command("REPLICAOF", "127.0.0.1", str(self.source.port))
        wait_until(lambda: "Connection with MASTER" in region.read_log(), timeout=30,
                   what="the dropped plain-text link in the log")
        self.assertEqual(info_fields(region, "replication")["master_link_status"], "down")
        self.assertEqual(region.client().dbsize(), 0)


if __name__ == "__main__":
    unittest.main()
