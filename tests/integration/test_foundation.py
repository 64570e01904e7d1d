"""Foundation: a real lattice-server driven by redis-cli, redis-py and raw sockets."""
import os
import signal
import subprocess
import unittest

import redis

from harness import (SERVER, ServerProcess, ServerTestCase, read_exactly, read_until,
                     read_until_closed, wait_until)


class BasicsTest(ServerTestCase):
    def test_ping_with_redis_cli(self):
        code, out = self.server.cli("ping")
        self.assertEqual(0, code)
        self.assertEqual("PONG\n", out)
        self.assertEqual((0, "hello world\n"), self.server.cli("ping", "hello world"))

    def test_ping_and_echo_with_redis_py(self):
        r = self.server.client()
        self.assertTrue(r.ping())
        self.assertEqual(b"x\x00y", r.echo(b"x\x00y"))

    def test_unknown_command_wording(self):
        r = self.server.client()
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("NOSUCH", "a", "b")
        self.assertEqual("unknown command 'NOSUCH', with args beginning with: 'a' 'b' ",
                         str(raised.exception))

    def test_wrong_arity(self):
        r = self.server.client()
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("ECHO")
        self.assertEqual("wrong number of arguments for 'echo' command", str(raised.exception))
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("CLIENT", "SETNAME")
        self.assertEqual("wrong number of arguments for 'client|setname' command",
                         str(raised.exception))

    def test_pipeline_of_10k_commands(self):
        r = self.server.client()
        pipe = r.pipeline(transaction=False)
        for i in range(10000):
            pipe.echo(f"m{i}")
        replies = pipe.execute()
        self.assertEqual([f"m{i}".encode() for i in range(10000)], replies)

    def test_raw_pipeline_in_one_write_gets_all_replies_in_order(self):
        count = 10000
        payload = b"".join(b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (len(str(i)), str(i).encode())
                           for i in range(count))
        expected = b"".join(b"$%d\r\n%s\r\n" % (len(str(i)), str(i).encode())
                            for i in range(count))
        with self.server.raw() as sock:
            sock.sendall(payload)
            self.assertEqual(expected, read_exactly(sock, len(expected)))

    def test_byte_by_byte_and_inline(self):
        with self.server.raw() as sock:
            for byte in b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n":
                sock.sendall(bytes([byte]))
            self.assertEqual(b"$3\r\nabc\r\n", read_exactly(sock, 9))
            sock.sendall(b'ECHO "a b"\r\nPING\n')
            self.assertEqual(b"$3\r\na b\r\n+PONG\r\n", read_exactly(sock, 16))

    def test_protocol_error_replies_then_closes(self):
        with self.server.raw() as sock:
            sock.sendall(b"*1\r\n$x\r\n")
            self.assertEqual(b"-ERR Protocol error: invalid bulk length\r\n", read_until_closed(sock))
        with self.server.raw() as sock:
            sock.sendall(b'SET "a\r\n')
            self.assertEqual(b"-ERR Protocol error: unbalanced quotes in request\r\n",
                             read_until_closed(sock))
        self.assertTrue(self.server.client().ping())  # the server keeps serving others

    def test_hello_3_switches_to_resp3(self):
        with self.server.raw() as sock:
            sock.sendall(b"HELLO 3\r\n")
            data = read_until(sock, b"$7\r\nmodules\r\n*0\r\n")
            self.assertTrue(data.startswith(b"%7\r\n"), data)
            self.assertIn(b"$5\r\nproto\r\n:3\r\n", data)
            sock.sendall(b"CONFIG GET maxclients\r\n")
            expected = b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
            self.assertEqual(expected, read_exactly(sock, len(expected)))
        code, out = self.server.cli("-3", "hello", "3")
        self.assertEqual(0, code)
        self.assertIn("proto", out)

    def test_hello_errors(self):
        r = self.server.client()
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("HELLO", "4")
        self.assertEqual("NOPROTO unsupported protocol version", str(raised.exception))

    def test_select(self):
        r = self.server.client()
        self.assertTrue(r.execute_command("SELECT", "15"))
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("SELECT", "16")
        self.assertEqual("DB index is out of range", str(raised.exception))

    def test_client_commands(self):
        r = self.server.client()
        my_id = r.client_id()
        self.assertGreater(my_id, 0)
        self.assertTrue(r.client_setname("worker-1"))
        self.assertEqual("worker-1", r.client_getname())
        entries = [c for c in r.client_list() if int(c["id"]) == my_id]
        self.assertEqual(1, len(entries))
        self.assertEqual("worker-1", entries[0]["name"])
        self.assertEqual("client|list", entries[0]["cmd"])
        with self.assertRaises(redis.ResponseError):
            r.client_setname("bad name")
        self.assertTrue(r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib"))
        info = r.client_info()
        self.assertEqual("mylib", info["lib-name"])

    def test_client_kill_closes_the_other_connection(self):
        victim = self.server.client()
        victim_id = victim.client_id()
        killer = self.server.client()
        self.assertEqual(1, killer.client_kill_filter(_id=victim_id))
        wait_until(lambda: all(int(c["id"]) != victim_id for c in killer.client_list()),
                   what="killed client to disappear")
        self.assertEqual(0, killer.client_kill_filter(_id=victim_id))
        with self.assertRaises(redis.ResponseError) as raised:
            killer.execute_command("CLIENT", "KILL", "1.2.3.4:5")
        self.assertEqual("No such client", str(raised.exception))

    def test_config_get_set(self):
        r = self.server.client()
        self.assertEqual({"maxclients": "10000"}, r.config_get("maxclients"))
        self.assertTrue(r.config_set("maxmemory", "100mb"))
        self.assertEqual({"maxmemory": str(100 * 1024 * 1024)}, r.config_get("maxmemory"))
        with self.assertRaises(redis.ResponseError) as raised:
            r.config_set("nosuchoption", "1")
        self.assertEqual("Unknown option or number of arguments for CONFIG SET - 'nosuchoption'",
                         str(raised.exception))
        with self.assertRaises(redis.ResponseError) as raised:
            r.config_set("databases", "3")
        self.assertIn("can't set immutable config", str(raised.exception))
        many = r.config_get("*max*")
        self.assertIn("maxclients", many)
        self.assertIn("proto-max-bulk-len", many)

    def test_info_parsed_by_redis_py(self):
        r = self.server.client()
        r.ping()
        info = r.info()
        self.assertEqual("7.2.4", str(info["redis_version"]))
        self.assertEqual(self.server.port, info["tcp_port"])
        self.assertGreaterEqual(info["connected_clients"], 1)
        self.assertIn("used_memory", info)
        self.assertEqual(0, info["cluster_enabled"])
        stats = r.info("commandstats")
        self.assertIn("cmdstat_ping", stats)
        self.assertGreaterEqual(stats["cmdstat_ping"]["calls"], 1)
        everything = r.info("everything")
        self.assertIn("cmdstat_info", everything)

    def test_memory_figures_come_from_the_allocator(self):
        r = self.server.client()
        memory = r.info("memory")
        # Release builds link jemalloc as Valkey does (a sanitizer build would say libc).
        self.assertIn(memory["mem_allocator"], ("jemalloc-5.3.0", "libc"))
        self.assertGreater(memory["used_memory"], 0)
        self.assertGreaterEqual(memory["allocator_active"], memory["allocator_allocated"])
        self.assertIn("mem_fragmentation_ratio", memory)
        before = r.info("memory")["used_memory"]
        r.set("big", b"x" * (4 << 20))
        self.assertGreater(r.info("memory")["used_memory"], before + (3 << 20))
        stats = r.execute_command("MEMORY", "STATS")
        fields = dict(zip(stats[::2], stats[1::2]))
        self.assertGreaterEqual(fields[b"keys.count"], 1)
        self.assertGreater(fields[b"total.allocated"], 4 << 20)
        self.assertTrue(r.execute_command("MEMORY", "PURGE"))
        self.assertTrue(r.execute_command("MEMORY", "MALLOC-STATS"))
        r.delete("big")

    def test_errorstats_count_errors(self):
        r = self.server.client()
        def err_count():
            # redis-py leaves "count=N" (no comma) as a string, for Valkey as for Lattice.
            value = r.info("errorstats").get("errorstat_ERR", "count=0")
            return int(str(value).split("=")[1])
        before = err_count()
        with self.assertRaises(redis.ResponseError):
            r.execute_command("NOSUCH")
        self.assertEqual(before + 1, err_count())

    def test_command_table(self):
        r = self.server.client()
        count = r.command_count()
        self.assertGreaterEqual(count, 15)
        # redis-py parses COMMAND replies into {name: info}, as it does for Valkey.
        info = r.execute_command("COMMAND", "INFO", "echo")
        self.assertEqual(2, info["echo"]["arity"])
        self.assertIn("fast", info["echo"]["flags"])
        self.assertEqual(count, len(r.command()))
        with self.assertRaises(redis.ResponseError) as raised:
            r.execute_command("COMMAND", "GETKEYS", "PING", "x")
        self.assertEqual("The command has no key arguments", str(raised.exception))
        code, out = self.server.cli("command", "docs", "ping")
        self.assertEqual(0, code)
        self.assertIn("summary", out)

    def test_time_and_dbsize(self):
        r = self.server.client()
        seconds, micros = r.time()
        self.assertGreater(seconds, 1_600_000_000)
        self.assertEqual(0, r.dbsize())
        self.assertTrue(r.flushall())


class LimitsTest(ServerTestCase):
    def test_bulk_over_proto_max_bulk_len_is_a_protocol_error(self):
        r = self.server.client()
        self.assertTrue(r.config_set("proto-max-bulk-len", "1mb"))
        with self.server.raw() as sock:
            sock.sendall(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n")
            self.assertEqual(b"-ERR Protocol error: invalid bulk length\r\n",
                             read_until_closed(sock))
        self.assertTrue(r.config_set("proto-max-bulk-len", "512mb"))

    def test_query_buffer_limit_closes_without_reply(self):
        r = self.server.client()
        self.assertTrue(r.config_set("client-query-buffer-limit", "1mb"))
        before = r.info("stats")["client_query_buffer_limit_disconnections"]
        with self.server.raw() as sock:
            sock.sendall(b"*2\r\n$4\r\nECHO\r\n$3000000\r\n")
            chunk = b"x" * 65536
            try:
                for _ in range(40):  # 2.5 MB of a 3 MB argument, never completed
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertEqual(b"", read_until_closed(sock))
        after = r.info("stats")["client_query_buffer_limit_disconnections"]
        self.assertEqual(before + 1, after)
        self.assertTrue(r.config_set("client-query-buffer-limit", "1gb"))
        self.assertTrue(r.ping())

    def test_huge_claimed_lengths_do_not_allocate(self):
        r = self.server.client()
        before = r.info("memory")["used_memory"]
        socks = [self.server.raw() for _ in range(20)]
        for sock in socks:
            sock.sendall(b"*2147483647\r\n$536870912\r\nab")
        self.assertTrue(r.ping())
        after = r.info("memory")["used_memory"]
        for sock in socks:
            sock.close()
        self.assertLess(after - before, 64 * 1024 * 1024)


class AuthTest(ServerTestCase):
    server_args = ("--requirepass", "s3cret")

    def test_noauth_then_auth(self):
        r = self.server.client()
        with self.assertRaises(redis.exceptions.AuthenticationError):
            r.ping()
        good = self.server.client(password="s3cret")
        self.assertTrue(good.ping())
        with self.assertRaises(redis.ResponseError) as raised:
            self.server.client(password="wrong").ping()
        self.assertEqual("WRONGPASS invalid username-password pair or user is disabled.",
                         str(raised.exception))
        user = self.server.client(username="default", password="s3cret")
        self.assertTrue(user.ping())

    def test_unauthenticated_limits(self):
        with self.server.raw() as sock:
            sock.sendall(b"*11\r\n")
            self.assertEqual(b"-ERR Protocol error: unauthenticated multibulk length\r\n",
                             read_until_closed(sock))
        with self.server.raw() as sock:
            sock.sendall(b"*1\r\n$16385\r\n")
            self.assertEqual(b"-ERR Protocol error: unauthenticated bulk length\r\n",
                             read_until_closed(sock))

    def test_hello_with_auth(self):
        with self.server.raw() as sock:
            sock.sendall(b"HELLO 3\r\n")
            self.assertTrue(read_until(sock, b"\r\n").startswith(b"-NOAUTH HELLO must be called"))
            sock.sendall(b"HELLO 3 AUTH default s3cret\r\n")
            self.assertTrue(read_until(sock, b"modules\r\n*0\r\n").startswith(b"%7\r\n"))


class ConfigFileTest(unittest.TestCase):
    def test_config_file_then_args(self):
        server = ServerProcess("--maxclients", "77", config_text=(
            "# a Valkey-style config\n"
            "maxclients 50\n"
            "hash-max-listpack-entries 512\n"
            "io-threads 4\n"
            "timeout 0\n"))
        try:
            server.start()
            r = server.client()
            self.assertEqual({"maxclients": "77"}, r.config_get("maxclients"))
            self.assertEqual({"hash-max-listpack-entries": "512"},
                             r.config_get("hash-max-listpack-entries"))
            self.assertIn("hash-max-listpack-entries", server.read_log())
        finally:
            server.cleanup()

    def test_bad_config_exits_nonzero_naming_the_line(self):
        server = ServerProcess(config_text="port 7000\nnot-a-directive 1\n")
        done = subprocess.run(server.command_line(), capture_output=True, text=True, timeout=30)
        server.cleanup()
        self.assertNotEqual(0, done.returncode)
        self.assertIn("line 2", done.stderr)
        self.assertIn("not-a-directive", done.stderr)

    def test_debian_redis_conf_loads(self):
        path = "/etc/redis/redis.conf"
        self.assertTrue(os.path.exists(path), "scripts/install-deps installs redis-server")
        with open(path) as f:
            # The packaged file daemonizes and logs to /var/log; those lines are overridden
            # by the arguments that follow, as an operator would.
            text = f.read()
        server = ServerProcess("--daemonize", "no", "--logfile", "", "--pidfile", "",
                               config_text=text)
        try:
            server.start()
            self.assertTrue(server.client().ping())
        finally:
            server.cleanup()


class ShutdownTest(unittest.TestCase):
    def test_shutdown_command_exits_zero(self):
        server = ServerProcess().start()
        try:
            server.cli("shutdown")
            self.assertEqual(0, server.proc.wait(timeout=10))
        finally:
            server.cleanup()

    def test_sigterm_exits_zero(self):
        server = ServerProcess().start()
        try:
            self.assertEqual(0, server.stop(signal.SIGTERM))
        finally:
            server.cleanup()

    def test_version_flag(self):
        done = subprocess.run([SERVER, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(0, done.returncode)
        self.assertIn("lattice-server", done.stdout)


if __name__ == "__main__":
    unittest.main()
