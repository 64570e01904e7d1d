"""Test certificates for the TLS integration tests: scripts/gen-test-certs into a temporary dir,
made once per test module (setUpModule/tearDownModule)."""
import os
import shutil
import subprocess
import tempfile

from harness import ROOT

_dir = None


def make():
    global _dir
    _dir = tempfile.mkdtemp(prefix="lattice-certs-")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-test-certs"), _dir], check=True,
                   capture_output=True, timeout=60)


def remove():
    shutil.rmtree(_dir, ignore_errors=True)


def cert(name):
    """The path of a file made by gen-test-certs (ca.crt, node-default.key, ...)."""
    return os.path.join(_dir, name)
