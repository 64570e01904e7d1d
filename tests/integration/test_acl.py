"""Users and access on real processes: ACL users (read-only, read-write, admin) across commands
and keys, AUTH and HELLO AUTH, the error texts compared with redis-server, the ACL file and config
`user` lines across restarts, protected configs, and protected mode seen from a non-loopback
address (in a network namespace of our own, when the test runs as root)."""
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

import redis

from differential import Differential, RespConnection
from harness import SERVER, ServerProcess, ServerTestCase, free_port, read_until, wait_until

NOPERM_SET = "User reader has no permissions to run the 'set' command"


class AclUsersTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        admin = cls.server.client()
        admin.execute_command("ACL", "SETUSER", "reader", "on", ">rpw", "~app:*", "+@read",
                              "+@connection")
        admin.execute_command("ACL", "SETUSER", "writer", "on", ">wpw", "~app:*", "+@read",
                              "+@write", "+@connection", "+@transaction", "-@dangerous")
        admin.execute_command("ACL", "SETUSER", "admin", "on", ">apw", "~*", "&*", "+@all")

    def as_user(self, user, password, **kwargs):
        return self.server.client(username=user, password=password, **kwargs)

    def test_read_only_user(self):
        self.server.client().set("app:1", "v")
        reader = self.as_user("reader", "rpw")
        self.assertEqual(b"v", reader.get("app:1"))
        self.assertEqual([b"v", None], reader.mget("app:1", "app:2"))
        with self.assertRaises(redis.exceptions.NoPermissionError) as raised:
            reader.set("app:1", "w")
        self.assertEqual(NOPERM_SET, str(raised.exception))
        with self.assertRaises(redis.exceptions.NoPermissionError) as raised:
            reader.get("secret")
        self.assertEqual("No permissions to access a key", str(raised.exception))
        with self.assertRaises(redis.exceptions.NoPermissionError):
            reader.mget("app:1", "secret")
        self.assertIn(b" user=reader ", reader.execute_command("CLIENT", "INFO"))
        with self.assertRaises(redis.exceptions.NoPermissionError):  # ACL WHOAMI is only @slow
            reader.execute_command("ACL", "WHOAMI")

    def test_read_write_user(self):
        writer = self.as_user("writer", "wpw")
        self.assertTrue(writer.set("app:w", "1"))
        self.assertEqual(2, writer.incr("app:w"))
        self.assertEqual(1, writer.hset("app:h", "f", "v"))
        self.assertEqual(1, writer.delete("app:h"))
        with self.assertRaises(redis.exceptions.NoPermissionError):
            writer.set("other", "1")
        for command in (["FLUSHALL"], ["CONFIG", "SET", "timeout", "0"], ["ACL", "LIST"],
                        ["DEBUG", "DIGEST"], ["CRDT.PEER", "LIST"], ["KEYS", "*"]):
            with self.subTest(command=command), self.assertRaises(
                    redis.exceptions.NoPermissionError):
                writer.execute_command(*command)

    def test_admin_user(self):
        admin = self.as_user("admin", "apw")
        self.assertTrue(admin.set("anything", "1"))
        listed = admin.execute_command("ACL", "LIST")
        self.assertIn(b"user reader on sanitize-payload #" +
                      hashlib.sha256(b"rpw").hexdigest().encode() +
                      b" ~app:* resetchannels -@all +@read +@connection", listed)
        self.assertIn(b"user default on nopass sanitize-payload ~* &* +@all", listed)
        info = admin.execute_command("ACL", "GETUSER", "writer")
        self.assertEqual(b"-@all +@read +@write +@connection +@transaction -@dangerous",
                         info[info.index(b"commands") + 1])

    def test_transaction_checked_at_queue_time(self):
        with self.server.raw() as sock:
            sock.sendall(b"AUTH writer wpw\r\nMULTI\r\nGET app:1\r\nFLUSHALL\r\nEXEC\r\n")
            replies = read_until(sock, b"EXECABORT Transaction discarded because of previous "
                                       b"errors.\r\n")
        self.assertIn(b"+QUEUED\r\n-NOPERM User writer has no permissions to run the 'flushall' "
                      b"command\r\n", replies)
        log = self.server.client().execute_command("ACL", "LOG", "1")
        self.assertEqual(b"multi", log[0][log[0].index(b"context") + 1])

    def test_wrong_password_and_hello_auth(self):
        with self.assertRaises(redis.ResponseError) as raised:
            self.as_user("reader", "nope").ping()
        self.assertEqual("WRONGPASS invalid username-password pair or user is disabled.",
                         str(raised.exception))
        with self.server.raw() as sock:
            sock.sendall(b"HELLO 3 AUTH writer wpw\r\nGET app:none\r\nGET other\r\n")
            replies = read_until(sock, b"key\r\n")
            self.assertTrue(replies.startswith(b"%7\r\n"), replies)
            self.assertTrue(replies.endswith(b"*0\r\n_\r\n-NOPERM No permissions to access a key\r\n"),
                            replies)
            sock.sendall(b"HELLO 2 AUTH writer bad\r\n")
            self.assertIn(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                          read_until(sock, b"disabled.\r\n"))
        log = self.server.client().execute_command("ACL", "LOG")
        reasons = [entry[entry.index(b"reason") + 1] for entry in log]
        self.assertIn(b"auth", reasons)

    def test_deluser_disconnects_its_clients(self):
        admin = self.server.client()
        admin.execute_command("ACL", "SETUSER", "temp", "on", ">tpw", "+@all", "~*")
        temp = self.as_user("temp", "tpw")
        self.assertTrue(temp.ping())
        self.assertEqual(1, admin.execute_command("ACL", "DELUSER", "temp"))
        # The connection is closed; redis-py reconnects, and the user is gone.
        with self.assertRaises(redis.ResponseError) as raised:
            temp.ping()
        self.assertIn("WRONGPASS", str(raised.exception))


class AclDifferentialTest(unittest.TestCase):
    """Replies and errors that Redis 7.0 words as Valkey 9 does, against redis-server. (NOPERM
    texts are not compared: Redis 7.0 still says "this user has no permissions ...".)"""

    def test_acl_replies_and_errors_match_redis(self):
        commands = [
            ["AUTH", "x"],
            ["ACL", "SETUSER", "u1", "on", ">p1", "~k*", "+get", "+@hash", "-hdel"],
            ["ACL", "GETUSER", "nobody"],
            ["ACL", "USERS"],
            ["ACL", "WHOAMI"],
            ["ACL", "CAT"],
            ["ACL", "CAT", "nope"],
            ["ACL", "SETUSER", "u2", "+bogus"],
            ["ACL", "SETUSER", "u2", "+@bogus"],
            ["ACL", "SETUSER", "u2", "foo"],
            ["ACL", "SETUSER", "u2", "%X~a"],
            ["ACL", "SETUSER", "u2", "~*", "~a"],
            ["ACL", "SETUSER", "u2", "&*", "&a"],
            ["ACL", "SETUSER", "u2", "<nope"],
            ["ACL", "SETUSER", "u2", "#abc"],
            ["ACL", "SETUSER", "u 2"],
            ["ACL", "SETUSER", "u2", "+config|nope"],
            ["ACL", "DELUSER", "default"],
            ["ACL", "DELUSER", "u1", "u2", "nobody"],
            ["ACL", "GENPASS", "0"],
            ["ACL", "GENPASS", "x"],
            ["ACL", "LOG", "x"],
            ["ACL", "LOG", "RESET"],
            ["ACL", "NOPE"],
            ["ACL"],
            ["AUTH", "nobody", "x"],
            ["AUTH", "a", "b", "c"],
            ["ACL", "DRYRUN", "nobody", "get", "k"],
            ["ACL", "DRYRUN", "default", "nocmd"],
            ["ACL", "DRYRUN", "default", "get"],
            ["ACL", "DRYRUN", "default", "get", "k"],
        ]
        with Differential() as diff:
            diff.check(commands, seed=0)
            # requirepass: a new connection must authenticate.
            diff.check([["CONFIG", "SET", "requirepass", "s3cret"]], seed=1)
            diff.a.close()
            diff.b.close()
            diff.a, diff.b = RespConnection(diff.oracle_port), RespConnection(diff.lattice.port)
            # (HELLO 3 differs: Valkey 9 says "HELLO <proto> AUTH", Redis 7.0 "HELLO AUTH".)
            diff.check([["GET", "k"], ["AUTH", "wrong"], ["AUTH", "default", "x"],
                        ["AUTH", "s3cret"], ["ACL", "WHOAMI"],
                        ["ACL", "GETUSER", "default"]], seed=2,
                       normalize=lambda command, reply: drop_sanitize(reply))


def drop_sanitize(reply):
    """Valkey 9 (like Redis 7.2) shows the sanitize-payload flag; Redis 7.0 does not."""
    if isinstance(reply, list):
        return [drop_sanitize(item) for item in reply if item != b"sanitize-payload"]
    return reply


class AclFileTest(unittest.TestCase):
    def test_aclfile_load_save_and_restart(self):
        server = ServerProcess()
        path = os.path.join(server.dir, "users.acl")
        with open(path, "w") as f:
            f.write("user default on nopass ~* &* +@all\n"
                    "user app on >apw ~app:* +@read +@write\n")
        server.args += ["--aclfile", path]
        try:
            server.start()
            app = server.client(username="app", password="apw")
            self.assertTrue(app.set("app:1", "v"))
            admin = server.client()
            admin.execute_command("ACL", "SETUSER", "ops", "on", ">opw", "+@admin")
            self.assertEqual(b"OK", admin.execute_command("ACL", "SAVE"))
            with open(path) as f:
                saved = f.read()
            self.assertIn("user ops on sanitize-payload #", saved)
            server.stop()
            server.start()
            self.assertIn(b"ops", server.client(username="ops", password="opw")
                          .execute_command("ACL", "USERS"))
            # ACL LOAD: edits by hand take effect; a bad file changes nothing.
            with open(path, "a") as f:
                f.write("user late on nopass +ping\n")
            admin = server.client()
            self.assertEqual(b"OK", admin.execute_command("ACL", "LOAD"))
            self.assertTrue(server.client(username="late", password="x").ping())
            with open(path, "a") as f:
                f.write("user broken on +nosuchcommand\n")
            with self.assertRaises(redis.ResponseError) as raised:
                admin.execute_command("ACL", "LOAD")
            self.assertIn("Error in applying operation '+nosuchcommand'", str(raised.exception))
            self.assertIn("no change to the previously active ACL rules", str(raised.exception))
            self.assertIn(b"late", admin.execute_command("ACL", "USERS"))
        finally:
            server.cleanup()

    def test_config_user_lines_and_their_conflict_with_aclfile(self):
        text = ("user default on >dpw ~* &* +@all\n"
                "user ro on >ropw ~* +@read\n")
        server = ServerProcess(config_text=text)
        try:
            server.start()
            with self.assertRaises(redis.exceptions.AuthenticationError):
                server.client().ping()
            self.assertTrue(server.client(password="dpw").ping())
            ro = server.client(username="ro", password="ropw")
            self.assertIsNone(ro.get("k"))
            with self.assertRaises(redis.exceptions.NoPermissionError):
                ro.set("k", "v")
        finally:
            server.cleanup()
        both = ServerProcess("--aclfile", "/nonexistent/users.acl", config_text=text)
        done = subprocess.run(both.command_line(), capture_output=True, text=True, timeout=30)
        both.cleanup()
        self.assertNotEqual(0, done.returncode)
        self.assertIn("not both", done.stdout + done.stderr)

    def test_acl_save_without_aclfile(self):
        server = ServerProcess().start()
        try:
            with self.assertRaises(redis.ResponseError) as raised:
                server.client().execute_command("ACL", "SAVE")
            self.assertIn("not configured to use an ACL file", str(raised.exception))
        finally:
            server.cleanup()


class ProtectedConfigsTest(ServerTestCase):
    server_args = ("--enable-protected-configs", "no")

    def test_peers_and_protected_configs_are_refused_at_runtime(self):
        r = self.server.client()
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("CRDT.PEER", "ADD", "127.0.0.1:1")
        self.assertEqual(
            "CRDT.PEER ADD command not allowed. If the enable-protected-configs option is set to "
            "\"local\", you can run it from a local connection, otherwise you need to set this "
            "option in the configuration file, and then restart the server.",
            str(raised.exception))
        with self.assertRaises(redis.ResponseError) as raised:
            r.config_set("dbfilename", "x.rdb")
        self.assertIn("can't set protected config", str(raised.exception))
        with self.assertRaises(redis.ResponseError) as raised:
            r.config_set("dir", "/tmp")
        self.assertIn("can't set immutable config", str(raised.exception))
        self.assertEqual([], r.execute_command("CRDT.PEER", "LIST"))


class NetworkNamespace:
    """A network namespace of our own whose loopback device also has 10.200.0.1: a client that
    connects to that address comes from a non-loopback address, all inside the namespace."""
    ADDRESS = "10.200.0.1"

    def __init__(self):
        self.name = f"lattice-test-{uuid.uuid4().hex[:8]}"

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            self.run("ip", "link", "set", "lo", "up")
            self.run("ip", "addr", "add", f"{self.ADDRESS}/32", "dev", "lo")
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def run(self, *command, input=None):
        done = subprocess.run(["ip", "netns", "exec", self.name, *command], input=input,
                              capture_output=True, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"{command} failed: {done.stderr!r}")
        return done.stdout

    def converse(self, host, port, payload):
        """Connects from inside the namespace, sends `payload`, returns all bytes until the
        server closes the connection (the payload should end with QUIT)."""
        script = ("import socket,sys\n"
                  "s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n"
                  "s.sendall(sys.stdin.buffer.read())\n"
                  "data=b''\n"
                  "while True:\n"
                  "    try:\n"
                  "        chunk=s.recv(65536)\n"
                  "    except ConnectionResetError:\n"
                  "        break\n"
                  "    if not chunk: break\n"
                  "    data+=chunk\n"
                  "sys.stdout.buffer.write(data)\n")
        return self.run("/usr/bin/python3", "-c", script, host, str(port), input=payload)


def netns_available():
    if os.geteuid() != 0:
        return False
    probe = f"lattice-probe-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return made


@unittest.skipUnless(netns_available(), "needs root to create a network namespace")
class ProtectedModeTest(unittest.TestCase):
    def start_in(self, ns, *args):
        port = free_port()
        data_dir = tempfile.mkdtemp(prefix="lattice-test-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns.name, SERVER, "--port", str(port),
                                 "--bind", ns.ADDRESS, "127.0.0.1", "--dir", data_dir, *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (proc.terminate(), proc.wait(timeout=10)))
        wait_until(lambda: b"+PONG" in ns.converse("127.0.0.1", port, b"PING\r\nQUIT\r\n"),
                   what="lattice-server in the namespace")
        return port

    def test_non_loopback_clients_are_denied_until_a_password_is_set(self):
        with NetworkNamespace() as ns:
            port = self.start_in(ns, "--enable-debug-command", "local")
            denied = ns.converse(ns.ADDRESS, port, b"PING\r\nQUIT\r\n")
            self.assertTrue(denied.startswith(b"-DENIED Running in protected mode because "
                                              b"protected mode is enabled and no password is set "
                                              b"for the default user."), denied)
            self.assertNotIn(b"PONG", denied)
            self.assertEqual(b"+OK\r\n+OK\r\n", ns.converse(
                "127.0.0.1", port, b"CONFIG SET requirepass pw\r\nQUIT\r\n"))
            remote = ns.converse(ns.ADDRESS, port, b"AUTH pw\r\nPING\r\nDEBUG DIGEST\r\nQUIT\r\n")
            self.assertTrue(remote.startswith(b"+OK\r\n+PONG\r\n-ERR DEBUG command not allowed."),
                            remote)
            local = ns.converse("127.0.0.1", port, b"AUTH pw\r\nDEBUG DIGEST\r\nQUIT\r\n")
            self.assertTrue(local.startswith(b"+OK\r\n+0000000000"), local)

    def test_protected_mode_no_serves_everyone(self):
        with NetworkNamespace() as ns:
            port = self.start_in(ns, "--protected-mode", "no")
            self.assertEqual(b"+PONG\r\n+OK\r\n", ns.converse(ns.ADDRESS, port,
                                                             b"PING\r\nQUIT\r\n"))


if __name__ == "__main__":
    unittest.main()
