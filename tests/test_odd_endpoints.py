"""Odd endpoints and limits that must work: IPv6 addresses, two names for one
server, and the smallest --max-size allowed. (Those that cannot work are refused
in one line: tests/test_single.py.)"""

import re
import socket

import pytest
import zmq
from conftest import (
    RESEND_RE,
    WAIT,
    check_echo_client,
    check_sha_client,
    sha_reply,
    start_broker,
    start_rep,
    start_worker,
)


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as err:
        pytest.skip(f"no IPv6 loopback here: {err}")
    return "tcp://[::1]:*"


def test_ipv6_endpoints_work_for_every_script(spawn):
    """tcp://[::1]:PORT: libzmq takes an IPv6 address only with its IPV6 option
    on, which the scripts set for such an endpoint (before, `No such device`)."""
    any_port = ipv6_loopback()
    _, endpoint = start_rep(spawn, bind=any_port)
    assert endpoint.startswith("tcp://[::1]:")
    check_sha_client(spawn("c.py", "--connect", endpoint, "--count", 2, "--interval", 0), 2)
    _, front, back = start_broker(spawn, frontend=any_port, backend=any_port)
    start_worker(spawn, back)
    check_echo_client(spawn("mreq.py", "--connect", front, "--count", 2, "--interval", 0), 2)


@pytest.mark.parametrize("client", ["c.py", "mreq.py"])
def test_two_names_for_one_server_make_one_connection(spawn, client):
    """127.0.0.1 and localhost, or one endpoint twice: two connections from one
    client share its name, and the server's HANDOVER made them take it from each
    other (9 resends for 10 requests). The client connects once."""
    if client == "c.py":
        _, endpoint = start_rep(spawn)
    else:
        _, endpoint, back = start_broker(spawn)
        start_worker(spawn, back)
    port = endpoint.rpartition(":")[2]
    names = f"{endpoint},tcp://localhost:{port}"
    proc = spawn(client, "--connect", names, "--connect", endpoint,
                 "--count", 20, "--interval", 0, "--timeout", 2, "--retries", 0)  # fmt: skip
    (check_sha_client if client == "c.py" else check_echo_client)(proc, 20)
    assert proc.lines[0] == f"python (pid={proc.pid}): client connecting to {endpoint}"
    assert not proc.matches(RESEND_RE)


def test_a_server_given_two_names_for_its_broker_is_counted_once(spawn):
    broker, _, back = start_broker(spawn)
    port = back.rpartition(":")[2]
    worker = spawn("mrep.py", "--connect", f"{back},tcp://localhost:{port}")
    worker.wait_for("connected to broker at")
    broker.wait_for("server connected, 1 connected now")
    assert worker.lines[0] == f"python (pid={worker.pid}): echo server connecting to {back}"
    worker.stop()
    broker.wait_for("server left, 0 connected now")
    assert not [line for line in broker.lines if "2 connected now" in line]


def test_the_smallest_max_size_still_lets_every_handshake_through(spawn, zctx):
    """--max-size 512, the least allowed: a ZeroMQ handshake sends at most 296
    bytes in one frame (its READY command, with a routing id of 255 bytes), so
    every peer still connects, and a request under the limit is answered."""
    rep, endpoint = start_rep(spawn, "--max-size", 512)
    longest_name = zctx.socket(zmq.REQ)
    longest_name.setsockopt(zmq.ROUTING_ID, b"n" * 255)
    longest_name.connect(endpoint)
    longest_name.send(b"x" * 400)
    assert longest_name.poll(WAIT * 1000), rep.lines[-3:]
    assert longest_name.recv() == sha_reply(b"x" * 400)
    _, front, back = start_broker(spawn, "--max-size", 512)
    worker = start_worker(spawn, back, args=["--max-size", 512])
    check_echo_client(spawn("mreq.py", "--connect", front, "--count", 3, "--interval", 0), 3)
    assert not [line for line in worker.lines if re.search("lost broker|no ZeroMQ", line)]
