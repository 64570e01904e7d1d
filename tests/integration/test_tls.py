"""TLS on the client port and between regions (docs/security.md).

Certificates come from scripts/gen-test-certs, made once per run in a temporary dir. Clients:
redis-cli --tls and redis-py ssl=True, tls-auth-clients yes/no/optional, plain and TLS ports side
by side, port 0, certificate reload with CONFIG SET. Regions: mutual TLS with the shard identity
and the shard secret; strangers (wrong CA, another shard's certificate, wrong or missing secret,
plain TCP to a TLS replication port) are refused before any op is read, and logged.
"""
import socket
import ssl
import subprocess
import unittest

import redis

import tls_certs
from harness import ServerProcess, free_port, read_until_closed
from tls_certs import cert

setUpModule = tls_certs.make
tearDownModule = tls_certs.remove


def node_tls(shard="default", ca="ca.crt"):
    """The tls-* options of a node of `shard`."""
    return ["--tls-cert-file", cert(f"node-{shard}.crt"), "--tls-key-file", cert(f"node-{shard}.key"),
            "--tls-ca-cert-file", cert(ca)]


class TlsServer(ServerProcess):
    """A lattice-server with a TLS port; ready once a TLS handshake completes there."""

    def __init__(self, *args, plain=True):
        super().__init__(*args)
        self.tls_port = free_port()
        self.plain = plain

    def command_line(self):
        line = super().command_line()
        if not self.plain:
            line[line.index("--port") + 1] = "0"
        return line + ["--tls-port", str(self.tls_port)]

    def _accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.read_log()}")
        with self.tls_socket() as sock:
            return sock.version() is not None

    def tls_context(self, client_cert="client", ca="ca.crt"):
        context = ssl.create_default_context(cafile=cert(ca))
        context.check_hostname = False
        if client_cert:
            context.load_cert_chain(cert(f"{client_cert}.crt"), cert(f"{client_cert}.key"))
        return context

    def tls_socket(self, client_cert="client", ca="ca.crt"):
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        return self.tls_context(client_cert, ca).wrap_socket(raw)

    def tls_client(self, client_cert="client", **kwargs):
        options = {"ssl": True, "ssl_ca_certs": cert("ca.crt"), "ssl_cert_reqs": "required"}
        if client_cert:
            options.update(ssl_certfile=cert(f"{client_cert}.crt"),
                           ssl_keyfile=cert(f"{client_cert}.key"))
        return redis.Redis(host="127.0.0.1", port=self.tls_port, socket_timeout=10,
                           **options, **kwargs)

    def tls_cli(self, *args, client_cert="client"):
        line = ["redis-cli", "-p", str(self.tls_port), "--tls", "--cacert", cert("ca.crt")]
        if client_cert:
            line += ["--cert", cert(f"{client_cert}.crt"), "--key", cert(f"{client_cert}.key")]
        done = subprocess.run(line + list(args), capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout + done.stderr


class TlsServerTestCase(unittest.TestCase):
    """One TlsServer for the whole class, started with node_tls() + `extra_args`."""
    extra_args = ()
    plain = True

    @classmethod
    def setUpClass(cls):
        cls.server = TlsServer(*node_tls(), *cls.extra_args, plain=cls.plain).start()
        cls.addClassCleanup(cls.server.cleanup)


def tls_handshake_refused(server, client_cert, ca="ca.crt"):
    """True when the server refuses the handshake or closes before answering a PING."""
    try:
        with server.tls_socket(client_cert, ca) as sock:
            sock.sendall(b"PING\r\n")
            return read_until_closed(sock) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


class TlsClients(TlsServerTestCase):
    """tls-auth-clients yes (Valkey's default): a client certificate signed by the CA."""

    def test_redis_cli_tls_with_client_certificate(self):
        code, out = self.server.tls_cli("set", "cli:k", "v1")
        self.assertEqual((code, out.strip()), (0, "OK"))
        code, out = self.server.tls_cli("get", "cli:k")
        self.assertEqual(out.strip(), "v1")

    def test_redis_py_ssl_and_plain_port_share_the_keyspace(self):
        tls = self.server.tls_client()
        self.assertTrue(tls.ping())
        tls.set("shared:k", "over-tls")
        self.assertEqual(self.server.client().get("shared:k"), b"over-tls")
        self.server.client().set("shared:k2", "over-tcp")
        self.assertEqual(tls.get("shared:k2"), b"over-tcp")

    def test_pipeline_over_tls(self):
        pipe = self.server.tls_client().pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"pipe:{i}", "x" * (i % 50))
            pipe.get(f"pipe:{i}")
        replies = pipe.execute()
        self.assertEqual(replies[-1], b"x" * (499 % 50))
        self.assertEqual(len(replies), 1000)

    def test_client_without_certificate_is_refused(self):
        self.assertTrue(tls_handshake_refused(self.server, client_cert=None))
        with self.assertRaises(redis.ConnectionError):
            self.server.tls_client(client_cert=None).ping()
        code, out = self.server.tls_cli("ping", client_cert=None)
        self.assertNotIn("PONG", out)

    def test_client_certificate_of_another_ca_is_refused(self):
        self.assertTrue(tls_handshake_refused(self.server, client_cert="stranger"))

    def test_plain_text_on_the_tls_port_gets_no_reply(self):
        with socket.create_connection(("127.0.0.1", self.server.tls_port), timeout=10) as sock:
            sock.sendall(b"PING\r\n")
            self.assertNotIn(b"PONG", read_until_closed(sock))
        self.assertTrue(self.server.tls_client().ping())

    def test_config_get_shows_the_tls_options(self):
        config = self.server.client().config_get("tls-*")
        self.assertEqual(config["tls-port"], str(self.server.tls_port))
        self.assertEqual(config["tls-auth-clients"], "yes")
        self.assertEqual(config["tls-cert-file"], cert("node-default.crt"))


class TlsAuthClientsOptional(TlsServerTestCase):
    extra_args = ("--tls-auth-clients", "optional")

    def test_no_certificate_is_accepted_but_a_bad_one_is_not(self):
        self.assertTrue(self.server.tls_client(client_cert=None).ping())
        self.assertTrue(self.server.tls_client().ping())
        self.assertTrue(tls_handshake_refused(self.server, client_cert="stranger"))

    def test_auth_clients_no_at_runtime_accepts_any_client(self):
        client = self.server.client()
        try:
            client.config_set("tls-auth-clients", "no")
            self.assertTrue(self.server.tls_client(client_cert=None).ping())
        finally:
            client.config_set("tls-auth-clients", "optional")


class TlsOnly(TlsServerTestCase):
    """port 0: no plain TCP listener, as in Valkey."""
    extra_args = ("--tls-auth-clients", "no")
    plain = False

    def test_port_0_serves_tls_only(self):
        client = self.server.tls_client(client_cert=None)
        self.assertEqual(client.config_get("port"), {"port": "0"})
        self.assertTrue(client.set("only:k", "v"))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.server.port), timeout=5).close()
        self.assertIn("Ready to accept connections tls", self.server.read_log())

    def test_not_listening_anywhere_is_refused_at_start(self):
        server = ServerProcess("--port", "0")
        try:
            done = subprocess.run(server.command_line(), capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(done.returncode, 1)
            self.assertIn("Configured to not listen anywhere, exiting.", done.stdout + done.stderr)
        finally:
            server.cleanup()


class TlsStartupErrors(unittest.TestCase):
    def run_server(self, *args):
        server = ServerProcess(*args)
        try:
            done = subprocess.run(server.command_line(), capture_output=True, text=True,
                                  timeout=30)
            return done.returncode, done.stdout + done.stderr
        finally:
            server.cleanup()

    def test_missing_certificate_file_exits_with_the_reason(self):
        code, out = self.run_server("--tls-port", str(free_port()), "--tls-cert-file",
                                    cert("missing.crt"), "--tls-key-file", cert("client.key"),
                                    "--tls-ca-cert-file", cert("ca.crt"))
        self.assertEqual(code, 1)
        self.assertIn("Failed to load certificate: " + cert("missing.crt"), out)
        self.assertIn("Failed to configure TLS. Check logs for more info.", out)

    def test_auth_clients_without_a_ca_exits(self):
        code, out = self.run_server("--tls-port", str(free_port()), "--tls-cert-file",
                                    cert("node-default.crt"), "--tls-key-file",
                                    cert("node-default.key"))
        self.assertEqual(code, 1)
        self.assertIn("Either tls-ca-cert-file or tls-ca-cert-dir must be specified", out)

    def test_bad_protocols_exit(self):
        code, out = self.run_server("--tls-port", str(free_port()), *node_tls(),
                                    "--tls-protocols", "SSLv3")
        self.assertEqual(code, 1)
        self.assertIn("Invalid tls-protocols specified", out)


class TlsReload(TlsServerTestCase):

    def served_names(self):
        with self.server.tls_socket() as sock:
            return {value for kind, value in sock.getpeercert()["subjectAltName"]}

    def setUp(self):
        self.client = self.server.client()

    def test_config_set_reloads_certificates_and_refuses_bad_files(self):
        client = self.client
        self.assertIn("default.shard.lattice", self.served_names())
        held = self.server.tls_client()
        self.assertTrue(held.ping())

        # A certificate whose key does not match, and a file that does not exist: refused, the
        # old certificate stays.
        for name, value in [("tls-cert-file", cert("node-other.crt")),
                            ("tls-key-file", cert("missing.key")),
                            ("tls-ca-cert-file", cert("missing-ca.crt"))]:
            with self.assertRaises(redis.ResponseError) as refused:
                client.config_set(name, value)
            self.assertEqual(str(refused.exception),
                             f"CONFIG SET failed (possibly related to argument '{name}') - "
                             "Unable to update TLS configuration. Check server logs.")
            self.assertEqual(client.config_get(name)[name], {
                "tls-cert-file": cert("node-default.crt"),
                "tls-key-file": cert("node-default.key"),
                "tls-ca-cert-file": cert("ca.crt")}[name])
            self.assertIn("default.shard.lattice", self.served_names())
        self.assertIn("Restoring previous settings", self.server.read_log())

        # Certificate and key together: new connections get the new certificate; a connection
        # made before keeps working.
        self.assertTrue(self.client.execute_command(
            "CONFIG", "SET", "tls-cert-file", cert("node-other.crt"),
            "tls-key-file", cert("node-other.key")))
        self.assertIn("other.shard.lattice", self.served_names())
        self.assertTrue(held.ping())

        # Another CA: clients signed by the old one are refused from now on.
        client.config_set("tls-ca-cert-file", cert("stranger-ca.crt"))
        self.assertTrue(tls_handshake_refused(self.server, client_cert="client"))
        client.config_set("tls-ca-cert-file", cert("ca.crt"))
        self.assertTrue(self.server.tls_client().ping())
