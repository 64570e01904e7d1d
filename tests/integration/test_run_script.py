"""scripts/run, the newcomer's first command: three regions start and answer, a write in one is
read in another, a region killed with -9 is reported while the others keep serving, Ctrl-C
(SIGTERM) stops the rest, and a region that cannot start (its port taken) fails the script with
that region's reason and stops the regions already started. The script runs the built server
(LATTICE_SERVER) on free loopback ports with its data in a temporary directory."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest

from harness import ROOT, SERVER, free_port, wait_until

RUN = os.path.join(ROOT, "scripts", "run")


class RunScript:
    """scripts/run as a child process, its output collected line by line."""

    def __init__(self, ports, data):
        env = dict(os.environ, LATTICE_SERVER=SERVER)
        self.proc = subprocess.Popen(
            [RUN, "--ports", ",".join(map(str, ports)), "--data", data, "--fresh"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=60.0):
        regex = re.compile(pattern)
        return wait_until(lambda: next((m for m in map(regex.search, self.lines) if m), None),
                          timeout=timeout, what=f"'{pattern}' in scripts/run's output")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        return code


def ping(port):
    done = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True,
                          timeout=10)
    return done.stdout.strip() == "PONG"


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=10).stdout.strip()


def refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def distinct_free_ports(count):
    ports = []
    while len(ports) < count:
        port = free_port()
        if all(abs(port - p) != 10000 and port != p for p in ports):
            ports.append(port)
    return ports


def gone(pid):
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


class RunScriptTest(unittest.TestCase):
    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="lattice-run-")
        self.addCleanup(shutil.rmtree, self.data, True)

    def test_three_regions_serve_and_survive_one_killed(self):
        ports = distinct_free_ports(3)
        run = RunScript(ports, self.data)
        self.addCleanup(run.stop)
        run.wait_for(r"three regions of one shard")
        pids = [int(run.wait_for(rf"redis-cli -p {port} .*pid (\d+)").group(1)) for port in ports]
        # The banner comes only once every region answers.
        for port in ports:
            self.assertTrue(ping(port), run.output())
        self.assertEqual(cli(ports[0], "set", "greeting", "hello"), "OK")
        wait_until(lambda: cli(ports[2], "get", "greeting") == "hello", timeout=30,
                   what="the write in region a read in region c")

        os.kill(pids[1], signal.SIGKILL)  # started by our child, the script
        run.wait_for(rf"region-b \(port {ports[1]}\) exited with status 137")
        run.wait_for(r"Restart it \(it catches up from the others\): .*--port " + str(ports[1]))
        self.assertIsNone(run.proc.poll(), run.output())
        self.assertEqual(cli(ports[0], "set", "after", "kill"), "OK")
        wait_until(lambda: cli(ports[2], "get", "after") == "kill", timeout=30,
                   what="regions a and c still replicating")

        self.assertIn(run.stop(), (0, 143), run.output())
        wait_until(lambda: gone(pids[0]) and gone(pids[2]), timeout=15,
                   what="regions a and c stopped with the script")

    def test_a_region_that_cannot_start_fails_the_script_with_its_reason(self):
        ports = distinct_free_ports(3)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", ports[1]))
            taken.listen()
            run = RunScript(ports, self.data)
            self.addCleanup(run.stop)
            code = run.proc.wait(timeout=60)
            run.reader.join(timeout=10)
        output = run.output()
        self.assertEqual(code, 1, output)
        self.assertIn(f"region-b (port {ports[1]}) could not start", output)
        self.assertRegex(output, r"(?i)address already in use")
        self.assertNotIn("three regions of one shard", output)
        for port in (ports[0], ports[2]):
            wait_until(lambda port=port: refuses(port), timeout=15,
                       what=f"the region on port {port} stopped")

    def test_bad_options_are_refused(self):
        done = subprocess.run([RUN, "--ports", "7001,7002"], capture_output=True, text=True,
                              timeout=30, env=dict(os.environ, LATTICE_SERVER=SERVER))
        self.assertEqual(done.returncode, 2)
        self.assertIn("exactly three ports", done.stderr)
        done = subprocess.run([RUN, "--bogus"], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, LATTICE_SERVER=SERVER))
        self.assertEqual(done.returncode, 2)
        self.assertIn("unknown option '--bogus'", done.stderr)


class ServerCommandLineTest(unittest.TestCase):
    def test_help_prints_usage(self):
        for flag in ("--help", "-h"):
            done = subprocess.run([SERVER, flag], capture_output=True, text=True, timeout=10)
            self.assertEqual(done.returncode, 0)
            self.assertTrue(done.stdout.startswith("Usage: lattice-server"), done.stdout)
            self.assertIn("--peer HOST:PORT", done.stdout)

    def test_a_missing_dir_is_an_error_and_is_not_created(self):
        missing = os.path.join(tempfile.gettempdir(), f"lattice-missing-{os.getpid()}")
        done = subprocess.run([SERVER, "--port", str(free_port()), "--dir", missing],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(done.returncode, 1)
        self.assertIn(f">>> 'dir \"{missing}\"'", done.stderr)
        self.assertIn("No such file or directory", done.stderr)
        self.assertFalse(os.path.exists(missing))


if __name__ == "__main__":
    unittest.main()
