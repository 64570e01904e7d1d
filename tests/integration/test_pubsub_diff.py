"""Single-region Pub/Sub replies diffed against redis-server 7.0, in RESP2 and RESP3: SUBSCRIBE,
UNSUBSCRIBE (with and without names), PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE, PING
in subscribed mode, refused commands, PUBLISH to oneself, PUBSUB CHANNELS/NUMSUB/NUMPAT/
SHARDCHANNELS/SHARDNUMSUB, RESET.

A (P|S)(UN)SUBSCRIBE command has one reply per name, so replies are not read one per command:
each step ends with `PING <marker>` (allowed in subscribed mode) and everything up to the
marker's reply is the step's output, compared as parsed values. Bounded reads only.
"""
import socket
import subprocess
import shutil
import tempfile
import unittest

from harness import ServerProcess, free_port, wait_until
from differential import RespConnection


class Conn(RespConnection):
    """A raw connection parsing RESP2 and RESP3 (pushes marked) into Python values (the socket
    and line plumbing are RespConnection's)."""

    def value(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return (kind.decode(), rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size)
        if kind in (b"*", b"~", b">"):
            count = int(rest)
            items = None if count < 0 else [self.value() for _ in range(count)]
            return (kind.decode(), items)
        if kind == b"%":
            return ("%", [(self.value(), self.value()) for _ in range(int(rest))])
        raise AssertionError(f"unexpected line {line!r}")

    def step(self, command, marker):
        """Sends `command` then PING `marker`; returns the values before the marker's reply."""
        self.sock.sendall(RespConnection.encode(command) + RespConnection.encode(["PING", marker]))
        out = []
        while True:
            value = self.value()
            if value == marker.encode() or (isinstance(value, tuple) and value[1] is not None and
                                            len(value[1]) == 2 and value[1][1] == marker.encode()):
                return out
            out.append(value)


class PubSubDifferentialTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lattice = ServerProcess().start()
        cls.oracle_port = free_port()
        cls.oracle_dir = tempfile.mkdtemp(prefix="lattice-oracle-")
        cls.oracle = subprocess.Popen(
            ["redis-server", "--port", str(cls.oracle_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", cls.oracle_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up():
            with socket.create_connection(("127.0.0.1", cls.oracle_port), timeout=1):
                return True
        wait_until(up, what="redis-server oracle")

    @classmethod
    def tearDownClass(cls):
        cls.oracle.terminate()
        cls.oracle.wait(timeout=10)
        shutil.rmtree(cls.oracle_dir, ignore_errors=True)
        cls.lattice.cleanup()

    SCRIPT = [
        ["PUBSUB", "NUMPAT"],
        ["UNSUBSCRIBE"],
        ["PUNSUBSCRIBE"],
        ["SUNSUBSCRIBE"],
        ["SUBSCRIBE", "c1", "c2", "c1"],
        ["PSUBSCRIBE", "c*", "d?"],
        ["SSUBSCRIBE", "s1"],
        ["GET", "x"],
        ["PUBLISH", "c1", "hello"],
        ["SPUBLISH", "s1", "shard"],
        ["UNSUBSCRIBE", "c2", "nope"],
        ["PUNSUBSCRIBE"],
        ["SUNSUBSCRIBE", "s1"],
        ["UNSUBSCRIBE"],
        ["PUBSUB", "NUMSUB", "c1", "c2"],
        ["PUBSUB", "SHARDNUMSUB", "s1"],
        ["PUBSUB", "CHANNELS"],
        ["PUBSUB", "SHARDCHANNELS", "s*"],
        ["SUBSCRIBE", "c3"],
        ["RESET"],
        ["PUBSUB", "NUMSUB", "c3"],
        ["PUBSUB", "NUMPAT"],
        ["PUBSUB", "NOPE"],
        ["SUBSCRIBE"],
        ["PUBLISH", "c1"],
    ]

    def run_script(self, protocol):
        outputs = []
        for port in (self.oracle_port, self.lattice.port):
            conn = Conn(port)
            try:
                if protocol == 3:
                    conn.step(["HELLO", "3"], "hello")
                steps = []
                for i, command in enumerate(self.SCRIPT):
                    steps.append((command, conn.step(command, f"m{i}")))
                outputs.append(steps)
            finally:
                conn.sock.close()
        for (command, want), (_, got) in zip(*outputs):
            self.assertEqual(want, got, f"RESP{protocol} {command}")

    def test_resp2(self):
        self.run_script(2)

    def test_resp3(self):
        self.run_script(3)


if __name__ == "__main__":
    unittest.main()
