"""Mutual TLS between regions, the shard identity and the shard secret (docs/security.md).

Three regions with tls-replication and crdt-shard-secret converge. A stranger dials region 0 and
is refused before any op is read, with the reason in region 0's log: a certificate of another
CA, a certificate of the right CA naming another shard, a wrong secret, no secret, a region
without TLS, and a raw plain-TCP client on the TLS replication port.
"""
import os
import random
import socket
import unittest

import tls_certs
from harness import (ServerProcess, connected_peers, info_fields, read_until_closed,
                     start_regions, wait_converged, wait_until)
from tls_certs import cert

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_tls_replication seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)
SECRET = "correct horse battery staple"
setUpModule = tls_certs.make
tearDownModule = tls_certs.remove


def region_tls(node="node-default", ca="ca.crt", secret=SECRET):
    args = ["--tls-replication", "yes", "--tls-cert-file", cert(f"{node}.crt"),
            "--tls-key-file", cert(f"{node}.key"), "--tls-ca-cert-file", cert(ca)]
    return args + (["--crdt-shard-secret", secret] if secret is not None else [])


class MutualTlsRegions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.regions = start_regions(3, *region_tls())
        for server in cls.regions:
            cls.addClassCleanup(server.cleanup)

    def test_writes_in_every_region_converge(self):
        rng = random.Random(SEED)
        clients = [server.client() for server in self.regions]
        for i in range(300):
            client = rng.choice(clients)
            key = f"conv:{rng.randrange(30)}"
            kind = rng.randrange(3)
            if kind == 0:
                client.set(key + ":s", f"v{i}")
            elif kind == 1:
                client.incrby(key + ":c", rng.randrange(1, 5))
            else:
                client.sadd(key + ":set", f"m{rng.randrange(10)}")
        wait_converged(self.regions)
        self.assertGreater(int(self.regions[2].cli("dbsize")[1]), 0)
        for server in self.regions:
            self.assertIn("replication on port {} (TLS)".format(server.port + 10000),
                          server.read_log())

    def assert_refused(self, reason, *args, peer_to=0):
        """Starts a stranger that dials region `peer_to` and writes a key; waits until that
        region logs `reason`; the stranger's key never arrives and the mesh stays intact."""
        target = self.regions[peer_to]
        before = target.read_log().count(reason)
        stranger = ServerProcess("--region", "stranger", "--peer",
                                 f"127.0.0.1:{target.port + 10000}", *args)
        try:
            stranger.start()
            stranger.client().set("stranger:key", "should-not-cross")
            wait_until(lambda: target.read_log().count(reason) > before, timeout=15,
                       what=f"region log to say {reason!r}")
            self.assertEqual(connected_peers(stranger), 0)
            self.assertIsNone(target.client().get("stranger:key"))
            self.assertEqual(connected_peers(target), 2)
            status = info_fields(stranger, "replication")
            self.assertEqual(status.get("crdt_connected_peers"), "0")
        finally:
            stranger.cleanup()
        # The regions still replicate with each other.
        self.regions[0].client().set(f"after:{reason[:10]}", "ok")
        wait_converged(self.regions)

    def test_certificate_of_another_ca_is_refused(self):
        self.assert_refused("certificate verify failed", *region_tls(node="stranger"))

    def test_right_ca_but_another_shard_identity_is_refused(self):
        self.assert_refused("does not name shard 'default'", *region_tls(node="node-other"))

    def test_wrong_shard_secret_is_refused(self):
        self.assert_refused("wrong shard secret", *region_tls(secret="guess"))

    def test_missing_shard_secret_is_refused(self):
        self.assert_refused("proves no shard secret", *region_tls(secret=None))

    def test_region_without_tls_is_refused(self):
        self.assert_refused("TLS handshake failed")

    def test_plain_client_on_the_tls_replication_port_is_refused(self):
        target = self.regions[1]
        before = target.read_log().count("TLS handshake failed")
        # A replication frame header (length, checksum) and bytes: not a TLS ClientHello.
        with socket.create_connection(("127.0.0.1", target.port + 10000), timeout=10) as sock:
            sock.sendall(b"\x00\x00\x00\x10" + b"\x00" * 4 + b"\x0a\x0e" + b"x" * 14)
            received = read_until_closed(sock)
        self.assertNotIn(b"region-1", received)  # no Hello came back
        wait_until(lambda: target.read_log().count("TLS handshake failed") > before,
                   what="the refusal to be logged")
        self.assertEqual(connected_peers(target), 2)

    def test_both_ends_log_a_wrong_secret(self):
        stranger = ServerProcess("--region", "stranger", "--peer",
                                 f"127.0.0.1:{self.regions[0].port + 10000}",
                                 *region_tls(secret="guess"))
        try:
            stranger.start()
            wait_until(lambda: "wrong shard secret" in stranger.read_log(),
                       what="the stranger to log the wrong secret")
            self.assertEqual(connected_peers(stranger), 0)
        finally:
            stranger.cleanup()
