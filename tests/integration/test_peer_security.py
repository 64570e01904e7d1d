"""Hostile peers against a real lattice-server (docs/security.md, "Peer links"): a stranger's
Hello is refused and never persisted (protected mode), and a peer that acknowledges ops of the
region it never got (Ack, Heartbeat or Hello vector) loses its link and is not counted by
CRDT.WAIT. The peer is played by peer_wire.py over a raw socket. Seeds are printed."""
import os
import random
import socket
import unittest

from harness import ServerProcess, wait_until
import peer_wire

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_peer_security seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)

FORGED_SEQ = 1 << 61


def crdt_status(server):
    raw = server.client().execute_command("CRDT.STATUS")
    status = dict(zip(raw[0::2], raw[1::2]))
    status[b"peers"] = [dict(zip(p[0::2], p[1::2])) for p in status[b"peers"]]
    return status


def replica_of(server):
    return int(crdt_status(server)[b"replica_id"], 16)


def peers_file_ids(server):
    """The replica ids in the server's persisted peers file(s), as ints."""
    ids = set()
    for root, _, files in os.walk(server.dir):
        if "peers" in files:
            with open(os.path.join(root, "peers")) as f:
                ids |= {int(line, 16) for line in f.read().split()}
    return ids


def peer_states(server):
    return {int(p[b"replica_id"], 16): p[b"state"] for p in crdt_status(server)[b"peers"]}


class Stranger(unittest.TestCase):
    def test_hello_from_an_unconfigured_address_is_refused_and_not_persisted(self):
        rng = random.Random(SEED)
        region = ServerProcess("--region", "home").start()
        try:
            region.client().set("secret:key", "x" * 100)
            stranger = rng.randrange(1, 1 << 63)
            with socket.create_connection(("127.0.0.1", region.port + 10000), timeout=10) as sock:
                local = sock.getsockname()
                sock.sendall(peer_wire.hello("default", stranger, "stranger"))
                received = b""
                sock.settimeout(10)
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    received += chunk
            # Nothing of the data reached it (no snapshot, no op), and no Hello either.
            self.assertFalse(b"xxxxxxxxxx" in received, "the stranger was sent the data")
            self.assertFalse(b"home" in received, "the stranger was sent a Hello")
            wait_until(lambda: "not a configured peer" in region.read_log(),
                       what="the refusal to be logged")
            line = [l for l in region.read_log().splitlines() if "not a configured peer" in l][0]
            self.assertIn(f"127.0.0.1:{local[1]}", line)
            self.assertNotIn(stranger, peers_file_ids(region))
            self.assertEqual(crdt_status(region)[b"peers"], [])
            self.assertTrue(region.client().ping())
        finally:
            region.cleanup()

    def test_protected_mode_no_still_refuses_unconfigured_addresses(self):
        region = ServerProcess("--crdt-peer-protected-mode", "no").start()
        try:
            with socket.create_connection(("127.0.0.1", region.port + 10000), timeout=10) as sock:
                sock.sendall(peer_wire.hello("default", 12345, "stranger"))
                self.assertTrue(peer_wire.closed_within(sock, 10))
            self.assertEqual(crdt_status(region)[b"peers"], [])
            self.assertNotIn(12345, peers_file_ids(region))
        finally:
            region.cleanup()


class ForgedAcknowledgements(unittest.TestCase):
    """The region dials a configured address where this test listens, so the impostor is
    admitted (it is configured); then it claims ops of the region it was never sent."""

    def setUp(self):
        self.rng = random.Random(SEED)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(15)
        address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.region = ServerProcess("--region", "home", "--peer", address).start()
        self.target = replica_of(self.region)
        self.impostor = self.rng.randrange(1, 1 << 63)

    def tearDown(self):
        self.region.cleanup()
        self.listener.close()

    def link(self, applied=None):
        """Accepts the region's dial and completes the handshake; the connected socket."""
        sock, _ = self.listener.accept()
        sock.sendall(peer_wire.hello("default", self.impostor, "impostor", applied))
        return sock

    def wait_linked(self):
        wait_until(lambda: peer_states(self.region).get(self.impostor) == b"connected",
                   what="the impostor to be connected")

    def assert_dropped_and_not_counted(self, sock, writer):
        self.assertTrue(peer_wire.closed_within(sock, 10), "the link was not dropped")
        sock.close()
        # Not counted: no region applied the write.
        self.assertEqual(writer.execute_command("CRDT.WAIT", 1, 300), 0)
        acked = crdt_status(self.region)[b"peers"][0].get(b"acked", b"")
        self.assertNotIn(str(FORGED_SEQ).encode(), acked)
        log = self.region.read_log()
        lines = [l for l in log.splitlines() if f"reports our op {FORGED_SEQ}" in l]
        self.assertTrue(lines, "the violation was not logged")
        self.assertTrue(any("127.0.0.1:" in l and "'impostor'" in l for l in lines), lines)

    def test_ack_of_an_op_never_sent_drops_the_link(self):
        sock = self.link()
        self.wait_linked()
        writer = self.region.client()
        writer.set("k", "v")
        sock.sendall(peer_wire.ack({self.target: FORGED_SEQ}))
        self.assert_dropped_and_not_counted(sock, writer)

    def test_forged_heartbeat_vector_drops_the_link(self):
        sock = self.link()
        self.wait_linked()
        writer = self.region.client()
        writer.set("k", "v")
        sock.sendall(peer_wire.heartbeat(0, {self.target: FORGED_SEQ}))
        self.assert_dropped_and_not_counted(sock, writer)

    def test_hello_vector_beyond_what_was_sent_is_refused(self):
        writer = self.region.client()
        writer.set("k", "v")
        sock = self.link(applied={self.target: FORGED_SEQ})
        self.assert_dropped_and_not_counted(sock, writer)

    def test_an_honest_ack_counts(self):
        """The control: acknowledging exactly what it was sent is counted by CRDT.WAIT."""
        sock = self.link()
        self.wait_linked()
        writer = self.region.client()
        writer.set("k", "v")
        seq = int(wait_until(
            lambda: crdt_status(self.region)[b"applied"].decode().split(":")[-1],
            what="the region's applied vector"))
        wait_until(lambda: peer_states(self.region).get(self.impostor) == b"connected",
                   what="still connected")
        sock.sendall(peer_wire.ack({self.target: seq}))
        self.assertEqual(writer.execute_command("CRDT.WAIT", 1, 5000), 1)
        self.assertFalse(peer_wire.closed_within(sock, 0.3))
        sock.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
