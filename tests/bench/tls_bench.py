"""TLS throughput cost: redis-benchmark against one lattice-server, on its plain port and on its
TLS port (tls-auth-clients no, TLS 1.3, certificates from scripts/gen-test-certs), SET and GET,
-P 1 and -P 16, 50 clients, -r 100000 keys. Plain and TLS runs alternate in every round, and
the table shows the median of the rounds. The server is pinned to CPU 0 and redis-benchmark to
CPU 1 (when taskset exists). Prints a Markdown table (docs/security.md, "TLS throughput cost").

    /usr/bin/python3 tests/bench/tls_bench.py [--rounds 3] [--n 200000]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.environ.get("LATTICE_SERVER", os.path.join(ROOT, "build", "bin", "lattice-server"))
FINAL = re.compile(r"^[A-Z]+[^:]*: ([0-9.]+) requests per second", re.M)


def pinned(cpu):
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lattice-server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"lattice-server not listening on {port}")


def benchmark(port, test, pipeline, n, tls_args):
    command = pinned(1) + ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "50",
                           "-P", str(pipeline), "-n", str(n), "-r", "100000", "-d", "16",
                           "-t", test, "-q"] + tls_args
    out = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout
    rates = FINAL.findall(out.replace("\r", "\n"))
    if not rates:
        raise RuntimeError(f"no rate in redis-benchmark output: {out[-300:]}")
    return float(rates[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=200000, help="requests per -P1 run (x4 at -P16)")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="lattice-tls-bench-")
    certs = os.path.join(work, "certs")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-test-certs"), certs], check=True,
                   capture_output=True)
    port, tls_port = free_port(), free_port()
    command = pinned(0) + [
        SERVER, "--port", str(port), "--tls-port", str(tls_port), "--bind", "127.0.0.1",
        "--dir", os.path.join(work, "data"), "--replication-port", str(free_port()),
        "--appendfsync", "no", "--save", "", "--tls-auth-clients", "no",
        "--tls-cert-file", os.path.join(certs, "node-default.crt"),
        "--tls-key-file", os.path.join(certs, "node-default.key"),
        "--tls-ca-cert-file", os.path.join(certs, "ca.crt")]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tls_args = ["--tls", "--cacert", os.path.join(certs, "ca.crt")]
    results = {}
    try:
        wait_listening(port, server)
        for _ in range(options.rounds):
            for test in ("set", "get"):
                for pipeline in (1, 16):
                    n = options.n * (4 if pipeline > 1 else 1)
                    for mode, target, extra in (("plain", port, []), ("tls", tls_port, tls_args)):
                        rate = benchmark(target, test, pipeline, n, extra)
                        results.setdefault((test, pipeline, mode), []).append(rate)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"rounds: {options.rounds}, median requests/s, 50 clients, 16-byte values")
    print("| test | plain | TLS | TLS / plain |")
    print("| --- | ---: | ---: | ---: |")
    for test in ("set", "get"):
        for pipeline in (1, 16):
            plain = statistics.median(results[(test, pipeline, "plain")])
            tls = statistics.median(results[(test, pipeline, "tls")])
            print(f"| {test.upper()} -P{pipeline} | {plain:,.0f} | {tls:,.0f} | {tls / plain:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
