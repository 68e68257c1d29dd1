"""What the servers promise, each test run against every script that makes the
promise: rep.py and mrep.py answer the request in hand when stopped and hold
each request for --work; rep.py and msgqueue.py, which bind, take a class
connecting at once, take a client back under its name, and raise a low
open-file limit or say why they cannot.
"""

import selectors
import signal
import socket
import sys
import time

import pytest
import zmq
from conftest import (
    ANY_PORT,
    ECHO_BACK_RE,
    SERVER_GOT_RE,
    SHA_BACK_RE,
    WAIT,
    check_echo_client,
    check_sha_client,
    sha_reply,
    start_broker,
    start_rep,
    start_worker,
)

BIG = 16 * 1024 * 1024  # bytes: a reply this big takes a while to leave


def echo(data):
    return data


def start_binder(spawn, script, *args, **options):
    """rep.py, or msgqueue.py with one mrep.py behind it. Returns (the binder, the
    endpoint clients connect to, what the answer to a request is)."""
    if script == "rep.py":
        proc = spawn("rep.py", "--bind", ANY_PORT, *args, **options)
        endpoint = proc.wait_for(r"serving sha1 on (tcp://[^\s,]+)").group(1)
        return proc, endpoint, sha_reply
    proc, front, back = start_broker(spawn, *args, **options)
    start_worker(spawn, back, args=["--quiet"])
    return proc, front, echo


def check_client(spawn, script, endpoint):
    """A real client of that server gets its answers."""
    if script == "rep.py":
        check_sha_client(spawn("c.py", "--connect", endpoint, "--count", 2, "--interval", 0), 2)
    else:
        check_echo_client(spawn("mreq.py", "--connect", endpoint, "--count", 2, "--interval", 0), 2)


@pytest.mark.parametrize("script", ["rep.py", "mrep.py"])
def test_stopped_server_answers_the_request_in_hand(spawn, zctx, script):
    # A big request, so that the reply is still leaving when the server closes its
    # socket: LINGER must give it time to go (0 would drop it).
    args = ["--work", 0.5, "--max-size", 2 * BIG]
    if script == "rep.py":
        server, endpoint = start_rep(spawn, *args)
        peer = zctx.socket(zmq.REQ)  # a client
        peer.connect(endpoint)
        expected = [sha_reply(b"x" * BIG)]
    else:
        peer = zctx.socket(zmq.DEALER)  # a broker's back end, as far as mrep.py can tell
        port = peer.bind_to_random_port("tcp://127.0.0.1")
        server = start_worker(spawn, f"tcp://127.0.0.1:{port}", args=args)
        peer.send(b"", zmq.SNDMORE)  # the envelope's delimiter
        expected = [b"", b"x" * BIG]
    peer.send(b"x" * BIG)
    server.wait_for(SERVER_GOT_RE)  # received, and now "working"
    server.send(signal.SIGINT)
    assert server.wait() == 0, server.stderr
    assert server.lines[-1] == f"python (pid={server.pid}): stopped"
    assert "sending back" in server.lines[-2], "it exited without answering"
    assert peer.poll(WAIT * 1000), "the answer never arrived"
    assert peer.recv_multipart() == expected


@pytest.mark.parametrize("script", ["rep.py", "mrep.py"])
def test_work_holds_each_request(spawn, script):
    if script == "rep.py":
        server, endpoint = start_rep(spawn, "--work", 0.5)
        client = spawn("c.py", "--connect", endpoint, "--count", 2, "--interval", 0)
        check_sha_client(client, 2)
        back_re = SHA_BACK_RE
    else:
        _, front, back = start_broker(spawn)
        server = start_worker(spawn, back, args=["--work", 0.5])
        client = spawn("mreq.py", "--connect", front, "--count", 2, "--interval", 0)
        check_echo_client(client, 2)
        back_re = ECHO_BACK_RE
    got, sent = server.arrivals(SERVER_GOT_RE), server.arrivals(back_re)
    held = [b - a for a, b in zip(got, sent)]
    assert len(held) == 2 and all(h > 0.25 for h in held), held  # 0.5 s, less our reading's delay


@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_client_reconnecting_before_the_server_noticed_keeps_being_served(spawn, zctx, script):
    # A client that names itself (as ours do) and comes back on a new connection
    # while the server still holds its old one (the server was frozen, or the
    # network was down) must be served on the new one.
    _, endpoint, answer = start_binder(spawn, script)
    connections = []  # both stay open: the first is the one the server still holds
    for request in (b"first", b"second"):
        player = zctx.socket(zmq.REQ)
        connections.append(player)
        player.setsockopt(zmq.ROUTING_ID, b"player-1")
        player.connect(endpoint)
        player.send(request)
        assert player.poll(WAIT * 1000), f"{request} was never answered"
        assert player.recv() == answer(request)


def connect_many(endpoint, n):
    """n plain TCP connections started at once, without waiting for them."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    conns = []
    for _ in range(n):
        conn = socket.socket()
        conn.setblocking(False)
        conn.connect_ex((host, int(port)))
        conns.append(conn)
    return conns


def wait_until_connected(conns):
    """Block until every connection is established (the kernel completed it)."""
    with selectors.DefaultSelector() as selector:
        for conn in conns:
            selector.register(conn, selectors.EVENT_WRITE)
        deadline, pending = time.monotonic() + WAIT, len(conns)
        while pending:
            left = deadline - time.monotonic()
            assert left > 0, f"{pending} of {len(conns)} connections are still not in"
            for key, _ in selector.select(left):
                assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                selector.unregister(key.fileobj)
                pending -= 1


@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_a_class_connecting_at_once_gets_in(spawn, script):
    # The OS holds connections the server has not accepted yet in its backlog;
    # libzmq's default holds 100, and the rest retry seconds later. A frozen
    # server accepts nothing, so every connection must wait in the backlog.
    server, endpoint, _ = start_binder(spawn, script)
    server.send(signal.SIGSTOP)
    conns = connect_many(endpoint, 300)
    try:
        wait_until_connected(conns)
    finally:
        server.send(signal.SIGCONT)
        for conn in conns:
            conn.close()
    check_client(spawn, script, endpoint)


def prlimit(soft, hard, script):
    return ["prlimit", f"--nofile={soft}:{hard}", sys.executable, script]


def send_from_clients(zctx, endpoint, n):
    """n REQ sockets of our own, each with one request sent."""
    clients = []
    for i in range(n):
        client = zctx.socket(zmq.REQ)
        client.connect(endpoint)
        client.send(b"%d" % i)
        clients.append(client)
    return clients


def wait_for_answers(clients, wanted, answer):
    """Block until `wanted` clients have the answer to their own request (or fail)."""
    poller = zmq.Poller()
    for client in clients:
        poller.register(client, zmq.POLLIN)
    answered = 0
    while answered < wanted:
        ready = poller.poll(WAIT * 1000)
        assert ready, f"only {answered} of {wanted} clients answered"
        for client, _ in ready:
            assert client.recv() == answer(b"%d" % clients.index(client))
            poller.unregister(client)
            answered += 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit is Linux's")
@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_server_raises_a_low_open_file_limit_and_serves_100_clients(spawn, zctx, script):
    server, endpoint, answer = start_binder(spawn, script, program=prlimit(64, 4096, script))
    assert "(room for 4064 connections)" in server.lines[0]
    wait_for_answers(send_from_clients(zctx, endpoint, 100), 100, answer)
    assert not [line for line in server.lines if "open-file limit" in line]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit is Linux's")
@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_server_at_its_open_file_limit_says_why_once_and_recovers(spawn, zctx, script):
    server, endpoint, answer = start_binder(spawn, script, program=prlimit(64, 64, script))
    clients = send_from_clients(zctx, endpoint, 100)
    server.wait_for(r"at the open-file limit \(Too many open files\): new connections wait")
    wait_for_answers(clients, 10, answer)  # those it took are served meanwhile
    for client in clients:
        client.close(linger=0)
    check_client(spawn, script, endpoint)
    assert len([line for line in server.lines if "open-file limit" in line]) == 1
