"""Cross-host: the broker, a server and a client on three "hosts" (network
namespaces joined by veth pairs), each reaching the broker by its address.

    server 198.18.1.2 --veth-- 198.18.1.1 BROKER 198.18.2.1 --veth-- 198.18.2.2 client
                                    (198.18.0.1: the broker's own
                                     address, routed from both sides)

198.18.0.0/15 is the range set aside for network tests (RFC 2544); these
addresses exist only inside the namespaces this test makes, and the test
deletes the namespaces afterwards, whatever happens. The flags are the README's
("Running across machines"). Skipped, with the reason, where namespaces
cannot be made (not root, or no iproute2).
"""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, check_echo_client

BROKER_ADDRESS = "198.18.0.1"
FRONTEND = f"tcp://{BROKER_ADDRESS}:5559"
BACKEND = f"tcp://{BROKER_ADDRESS}:5560"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def hosts():
    """Three namespaces: broker, server, client. Yields their names; always removes them."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need root and iproute2 (the ip command)")
    tag = f"zq{os.getpid() % 100000}"
    names = {role: f"{tag}{role[0]}" for role in ("broker", "server", "client")}
    made = []
    try:
        for name in names.values():
            try:
                ip("netns", "add", name)
            except subprocess.CalledProcessError as err:
                pytest.skip(f"cannot make a network namespace here: {err.stderr.strip()}")
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        broker = names["broker"]
        ip("-n", broker, "addr", "add", f"{BROKER_ADDRESS}/32", "dev", "lo")
        for side, subnet in (("server", 1), ("client", 2)):
            host, near, far = names[side], f"{tag}b{side[0]}", f"{tag}{side[0]}b"
            ip("link", "add", near, "netns", broker, "type", "veth", "peer", far, "netns", host)
            ip("-n", broker, "addr", "add", f"198.18.{subnet}.1/24", "dev", near)
            ip("-n", host, "addr", "add", f"198.18.{subnet}.2/24", "dev", far)
            ip("-n", broker, "link", "set", near, "up")
            ip("-n", host, "link", "set", far, "up")
            ip("-n", host, "route", "add", f"{BROKER_ADDRESS}/32", "via", f"198.18.{subnet}.1")
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def on(host, spawn, script, *args):
    """Run a script inside a namespace, as if on that host."""
    command = ["ip", "netns", "exec", host, sys.executable, str(ROOT / script)]
    return spawn(script, *args, program=command)


def test_readme_shows_these_exact_commands():
    readme = (ROOT / "README.md").read_text()
    for command in (
        f"python msgqueue.py --frontend {FRONTEND} --backend {BACKEND}",
        f"python mrep.py --connect {BACKEND}",
        f"python mreq.py --connect {FRONTEND}",
    ):
        assert f"$ {command}\n" in readme


def serve_one_client(spawn, hosts, server_host):
    """A server on `server_host` joins the broker and answers a client on the client host."""
    server = on(hosts[server_host], spawn, "mrep.py", "--connect", BACKEND)
    server.wait_for(f"connected to broker at {BACKEND}$")
    args = ["--connect", FRONTEND, "--count", 5, "--interval", 0]
    check_echo_client(on(hosts["client"], spawn, "mreq.py", *args), 5)
    server.wait_for(r"sending back the received data: .*", count=5)
    return server


def test_broker_server_and_client_on_three_hosts(spawn, hosts):
    broker = on(hosts["broker"], spawn, "msgqueue.py", "--frontend", FRONTEND, "--backend", BACKEND)
    broker.wait_for(f"broker up, clients on {FRONTEND}, servers on {BACKEND} ")
    server = serve_one_client(spawn, hosts, "server")
    # The server moves to the client's host: it joins from there, and serves.
    server.stop()
    serve_one_client(spawn, hosts, "client")
