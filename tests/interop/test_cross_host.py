"""Cross-host: the broker, a server and a client on three "hosts" (network
namespaces joined by veth pairs), each reaching the broker by its address.
Also what crosses a real link: a partition (the server's link taken down, so
its connection goes silent, not closed) and a slow link (a token-bucket rate
limit) carrying a request near --max-size.

    server 198.18.1.2 --veth-- 198.18.1.1 BROKER 198.18.2.1 --veth-- 198.18.2.2 client
                                    (198.18.0.1: the broker's own
                                     address, routed from both sides)

198.18.0.0/15 is the range set aside for network tests (RFC 2544); these
addresses exist only inside the namespaces this test makes, and the test
deletes the namespaces afterwards, whatever happens. The flags are the README's
("Running across machines"). Skipped, with the reason, where namespaces
cannot be made (not root, or no iproute2); under CI=true that fails instead.
"""

import os
import re
import subprocess
import sys

import pytest
from conftest import (
    DIGEST_RE,
    ECHO_RE,
    RESEND_RE,
    ROOT,
    check_echo_client,
    check_namespaces_possible,
    check_sha_client,
    ip,
    unavailable,
)

BROKER_ADDRESS = "198.18.0.1"
FRONTEND = f"tcp://{BROKER_ADDRESS}:5559"
BACKEND = f"tcp://{BROKER_ADDRESS}:5560"


@pytest.fixture
def hosts():
    """Three namespaces: broker, server, client. Yields their names (and "link_to_server":
    the broker's end of the server's veth); always removes them."""
    check_namespaces_possible()
    tag = f"zq{os.getpid() % 100000}"
    names = {role: f"{tag}{role[0]}" for role in ("broker", "server", "client")}
    made = []
    try:
        for name in names.values():
            try:
                ip("netns", "add", name)
            except subprocess.CalledProcessError as err:
                unavailable(f"cannot make a network namespace here: {err.stderr.strip()}")
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
        yield {**names, "link_to_server": f"{tag}bs", "link_of_server": f"{tag}sb"}
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


def start_three(spawn, hosts, *client_args):
    broker = on(hosts["broker"], spawn, "msgqueue.py", "--frontend", FRONTEND, "--backend", BACKEND)
    broker.wait_for(f"broker up, clients on {FRONTEND}, servers on {BACKEND} ")
    server = on(hosts["server"], spawn, "mrep.py", "--connect", BACKEND, "--quiet")
    server.wait_for(f"connected to broker at {BACKEND}$")
    return broker, server


def test_partitioned_server_is_dropped_then_rejoins_when_healed(spawn, hosts):
    broker, server = start_three(spawn, hosts)
    nearby = on(hosts["broker"], spawn, "mrep.py", "--connect", BACKEND, "--quiet")
    nearby.wait_for(f"connected to broker at {BACKEND}$")
    broker.wait_for("server connected, 2 connected now")
    args = ["--connect", FRONTEND, "--count", 150, "--interval", 0.02, "--timeout", 1]
    client = on(hosts["client"], spawn, "mreq.py", *args)
    client.wait_for(r"received the original data", count=5)
    # The cable is pulled: no packet crosses, and no connection is closed.
    ip("-n", hosts["broker"], "link", "set", hosts["link_to_server"], "down")
    broker.wait_for("server left, 1 connected now")  # the heartbeat noticed
    server.wait_for(f"lost broker at {BACKEND}, reconnecting")  # and so did the server
    resent = len(client.matches(RESEND_RE))
    client.wait_for(r"received the original data", count=len(client.matches(ECHO_RE)) + 20)
    assert len(client.matches(RESEND_RE)) <= resent + 1  # none once the server was dropped
    ip("-n", hosts["broker"], "link", "set", hosts["link_to_server"], "up")
    server.wait_for(f"connected to broker at {BACKEND}$", count=2)
    broker.wait_for("server connected, 2 connected now", count=2)
    check_echo_client(client, 150)


def slow_link(hosts):
    """5 Mbit/s each way between broker and server, through one queue each way."""
    for host, link in (("broker", "link_to_server"), ("server", "link_of_server")):
        subprocess.run(
            ["tc", "-n", hosts[host], "qdisc", "add", "dev", hosts[link], "root",
             "tbf", "rate", "5mbit", "burst", "32kbit", "latency", "5s"],
            check=True, capture_output=True,
        )  # fmt: skip


def big_client(spawn, host, endpoint, answer):
    command = ["ip", "netns", "exec", host, sys.executable, "-c", BIG_CLIENT, endpoint, answer]
    return spawn("big client", program=command)


def test_request_near_max_size_over_a_slow_link_is_not_cut_by_heartbeats(spawn, hosts):
    # A 1,000,000-byte request takes about 1.6 s to cross at 5 Mbit/s, under the
    # 3 s heartbeat timeout (README: the limit). A client on the server's host
    # shares that link: its heartbeats wait in the same queue, behind the big
    # messages, and it must not be dropped either.
    slow_link(hosts)
    broker, server = start_three(spawn, hosts)
    neighbour = on(hosts["server"], spawn, "mreq.py", *NEIGHBOUR_ARGS, "--connect", FRONTEND)
    neighbour.wait_for(ECHO_RE)
    client = big_client(spawn, hosts["client"], FRONTEND, "echo")
    client.wait_for(r"^answered 1000000 bytes$", count=2)
    assert client.wait() == 0, client.stderr
    assert not server.matches(re.compile(".*lost broker"))
    check_echo_client(neighbour, NEIGHBOUR_COUNT)
    assert not neighbour.matches(RESEND_RE)


def test_part1_request_near_max_size_over_a_slow_link_is_not_cut_by_heartbeats(spawn, hosts):
    # The same for rep.py, reached from the server's host over the slow link.
    slow_link(hosts)
    endpoint = f"tcp://{BROKER_ADDRESS}:5556"
    rep = on(hosts["broker"], spawn, "rep.py", "--bind", endpoint, "--quiet")
    rep.wait_for("serving sha1 on")
    neighbour = on(hosts["server"], spawn, "c.py", *NEIGHBOUR_ARGS, "--connect", endpoint)
    neighbour.wait_for(DIGEST_RE)
    client = big_client(spawn, hosts["server"], endpoint, "sha1")
    client.wait_for(r"^answered 1000000 bytes$", count=2)
    assert client.wait() == 0, client.stderr
    check_sha_client(neighbour, NEIGHBOUR_COUNT)
    assert not neighbour.matches(RESEND_RE)


NEIGHBOUR_COUNT = 40  # at --interval 0.2: longer than the big client's two round trips
NEIGHBOUR_ARGS = ["--count", NEIGHBOUR_COUNT, "--interval", 0.2, "--timeout", 10]

BIG_CLIENT = """
import hashlib, sys, zmq
sock = zmq.Context().socket(zmq.REQ)
sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # as our clients do
sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
sock.setsockopt(zmq.RCVTIMEO, 20000)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(sys.argv[1])
for n in range(2):
    request = bytes([n]) * 1_000_000
    sock.send(request)
    answer = request if sys.argv[2] == "echo" else hashlib.sha1(request).hexdigest().encode()
    assert sock.recv() == answer
    print(f"answered {len(request)} bytes", flush=True)
"""
