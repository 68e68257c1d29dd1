"""Every script run with no endpoint flags at all, as a newcomer first runs them:
binders serve loopback only, on the tutorial's ports, and connectors find them.

The default ports are fixed, so this runs in a network namespace of its own,
where nothing else (a demo, another test) can hold them. Skipped, with the
reason, where namespaces cannot be made; under CI=true that fails instead.
"""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, check_echo_client, check_namespaces_possible, check_sha_client, ip

CLIENT_ARGS = ["--count", 2, "--interval", 0, "--timeout", 1, "--retries", 1]


@pytest.fixture
def host():
    """A namespace with only a loopback interface; always removed."""
    check_namespaces_possible()
    name = f"zqdef{os.getpid() % 100000}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def run(spawn, host, script, *args):
    command = ["ip", "netns", "exec", host, sys.executable, str(ROOT / script)]
    return spawn(script, *args, program=command)


def test_defaults_are_loopback_and_the_tutorials_ports(spawn, host):
    rep = run(spawn, host, "rep.py")
    assert rep.wait_for(r"serving sha1 on (\S+)").group(1) == "tcp://127.0.0.1:5556"
    check_sha_client(run(spawn, host, "c.py", *CLIENT_ARGS), 2)
    rep.stop()

    broker = run(spawn, host, "msgqueue.py")
    ports = broker.wait_for(r"clients on (\S+), servers on (\S+)").groups()
    assert ports == ("tcp://127.0.0.1:5559", "tcp://127.0.0.1:5560")
    server = run(spawn, host, "mrep.py")
    server.wait_for(r"connected to broker at tcp://127\.0\.0\.1:5560$")
    check_echo_client(run(spawn, host, "mreq.py", *CLIENT_ARGS), 2)
