"""Bad input never stops a server or the broker (CONTRACT.md behaviour 8).

Each test sends something odd or hostile with sockets of its own, then checks
that the process is still running and that a normal client gets the right answer.
"""

import os
import socket

import pytest
import zmq
from conftest import (
    ECHO_BACK_RE,
    SERVER_GOT_RE,
    WAIT,
    check_echo_client,
    check_line_formats,
    check_sha_client,
    sha_reply,
    start_broker,
    start_rep,
    start_worker,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ODD_REQUESTS = [
    [b""],
    [b"\xff\xfe\x00binary"],
    ["café, 東京".encode()],
    [b"first", b"", b"third"],
    [b"line one\nline two\r\tend"],
]


def req_socket(ctx, endpoint):
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)  # a ceiling: a hung server fails the test
    sock.connect(endpoint)
    return sock


def still_serves_sha(spawn, rep, endpoint):
    assert rep.popen.poll() is None
    check_sha_client(spawn("c.py", "--connect", endpoint, "--count", 2, "--interval", 0), 2)
    check_line_formats(rep)


def still_serves_echo(spawn, broker, workers, front):
    assert broker.popen.poll() is None and all(w.popen.poll() is None for w in workers)
    check_echo_client(spawn("mreq.py", "--connect", front, "--count", 3, "--interval", 0), 3)
    for worker in workers:
        check_line_formats(worker)


def test_rep_hashes_odd_requests_and_shows_them_on_one_line(spawn, zctx):
    rep, endpoint = start_rep(spawn)
    client = req_socket(zctx, endpoint)
    for frames in ODD_REQUESTS:
        client.send_multipart(frames)
        assert client.recv() == sha_reply(b"".join(frames))
    rep.wait_for(SERVER_GOT_RE, count=len(ODD_REQUESTS))
    shown = [m.group(1) for m in rep.matches(SERVER_GOT_RE)]
    assert shown == [
        "",
        "\\xff\\xfe\\x00binary",
        "café, 東京",
        "firstthird",
        "line one\\nline two\\r\\tend",
    ]
    still_serves_sha(spawn, rep, endpoint)


def test_mrep_answers_odd_requests_with_their_frames_joined(spawn, zctx):
    # answer() takes and returns bytes, as rep.py's: a request of several frames is
    # one request, its frames joined, and its echo comes back as one frame.
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back)
    client = req_socket(zctx, front)
    for frames in ODD_REQUESTS:
        client.send_multipart(frames)
        assert client.recv_multipart() == [b"".join(frames)]
    worker.wait_for(ECHO_BACK_RE, count=len(ODD_REQUESTS))
    still_serves_echo(spawn, broker, [worker], front)


def test_oversized_request_drops_that_peer_and_rep_serves_the_others(spawn, zctx):
    rep, endpoint = start_rep(spawn, "--max-size", 1000)
    big = req_socket(zctx, endpoint)
    big.send(b"x" * 1001)
    still_serves_sha(spawn, rep, endpoint)
    # Exactly at the limit is still served.
    fine = req_socket(zctx, endpoint)
    fine.send(b"y" * 1000)
    assert fine.recv() == sha_reply(b"y" * 1000)
    rep.stop()  # all it ever printed is in: the big one was never even received
    assert "x" * 100 not in "\n".join(rep.lines)


def test_oversized_request_drops_that_peer_and_the_broker_serves_the_others(spawn, zctx):
    broker, front, back = start_broker(spawn, "--max-size", 1000)
    worker = start_worker(spawn, back)
    big = req_socket(zctx, front)
    big.send(b"x" * 5000)
    still_serves_echo(spawn, broker, [worker], front)
    worker.stop()  # all it ever printed is in: the big one never reached it
    assert not [line for line in worker.lines if "xxxx" in line]


def test_oversized_request_for_mrep_costs_one_reconnect(spawn, zctx):
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back, args=["--max-size", 1000])
    big = req_socket(zctx, front)
    big.send(b"x" * 5000)
    worker.wait_for("lost broker at")  # mrep dropped the connection that carried it...
    worker.wait_for("connected to broker at", count=2)  # ...and came straight back
    still_serves_echo(spawn, broker, [worker], front)
    worker.stop()  # all it ever printed is in: the big one was never taken as a request
    assert not [line for line in worker.lines if "xxxx" in line]


def test_requests_without_the_empty_delimiter_are_dropped(spawn, zctx):
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back)
    rep, endpoint = start_rep(spawn)
    for target in (front, endpoint):
        dealer = zctx.socket(zmq.DEALER)
        dealer.connect(target)
        dealer.send(b"no delimiter")
        dealer.send_multipart([b"two", b"frames"])
        dealer.send_multipart([b"\x00\x01", b"not empty", b"body"])
    still_serves_echo(spawn, broker, [worker], front)
    still_serves_sha(spawn, rep, endpoint)
    for server in (worker, rep):
        server.stop()
        assert not [line for line in server.lines if "delimiter" in line or "frames" in line]


def test_junk_replies_from_the_server_side_are_dropped(spawn, zctx):
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back)
    rogue = zctx.socket(zmq.DEALER)  # a "server" that answers what nobody asked
    rogue.connect(back)
    for frames in ([b""], [b"no such client", b"", b"x"], [os.urandom(5), b"", b"y"], [b"z"] * 9):
        rogue.send_multipart(frames)
    rogue.close(linger=2000)  # deliver the junk, then leave the round-robin
    still_serves_echo(spawn, broker, [worker], front)


def raw_tcp_garbage(endpoint):
    """Bytes that are not ZeroMQ: an HTTP request, random bytes, and an idle connection."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    idle = socket.create_connection((host, int(port)))
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096), b"\xff" * 64):
        with socket.create_connection((host, int(port))) as conn:
            conn.sendall(payload)
    return idle


def test_non_zeromq_bytes_on_every_bound_port(spawn):
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back)
    rep, endpoint = start_rep(spawn)
    idle = [raw_tcp_garbage(ep) for ep in (front, back, endpoint)]
    try:
        still_serves_echo(spawn, broker, [worker], front)
        still_serves_sha(spawn, rep, endpoint)
    finally:
        for conn in idle:
            conn.close()


def test_client_that_vanishes_mid_request_harms_no_one(spawn, zctx):
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back, args=["--work", 0.5])
    leaver = spawn("mreq.py", "--connect", front)
    worker.wait_for(SERVER_GOT_RE)
    leaver.send(9)  # SIGKILL while its request is being worked on
    leaver.wait()
    worker.wait_for(ECHO_BACK_RE)  # the reply goes nowhere, quietly:
    # a client of our own, which takes any message sent to it, asks next. One server,
    # one connection to the broker, in order: the orphan reply has passed the broker
    # before this client's own, so the first thing it gets would be the orphan.
    probe = zctx.socket(zmq.DEALER)
    probe.connect(front)
    probe.send_multipart([b"", b"probe"])
    assert probe.poll(WAIT * 1000), "the probe was never answered"
    assert probe.recv_multipart() == [b"", b"probe"]
    still_serves_echo(spawn, broker, [worker], front)

    rep, endpoint = start_rep(spawn)
    gone = req_socket(zctx, endpoint)
    gone.send(b"asked, then gone")
    gone.close(linger=0)
    still_serves_sha(spawn, rep, endpoint)


frame_lists = st.lists(st.binary(max_size=64), min_size=0, max_size=6)


@pytest.mark.parametrize("target", ["rep.py", "msgqueue.py"])
def test_random_frame_lists_never_stop_a_server(spawn, zctx, target):
    if target == "rep.py":
        server, endpoint = start_rep(spawn, "--quiet")
        workers = []
    else:
        server, endpoint, back = start_broker(spawn)
        workers = [start_worker(spawn, back, args=["--quiet"])]
    attacker = zctx.socket(zmq.DEALER)
    attacker.setsockopt(zmq.SNDHWM, 0)
    attacker.connect(endpoint)
    probe = zctx.socket(zmq.REQ)
    probe.setsockopt(zmq.RCVTIMEO, 10_000)
    probe.connect(endpoint)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(messages=st.lists(frame_lists, min_size=1, max_size=5))
    def attack_then_probe(messages):
        for frames in messages:
            if frames:
                attacker.send_multipart(frames)
        probe.send(b"probe")
        expected = sha_reply(b"probe") if workers == [] else b"probe"
        assert probe.recv() == expected

    attack_then_probe()
    assert server.popen.poll() is None
    assert all(w.popen.poll() is None for w in workers)
