"""No client can abort a server or the broker (CONTRACT.md behaviour 8).

libzmq 4.3.5 asserts (`!_io_error`, src/stream_engine_base.cpp:310) and aborts the
whole process when a heartbeat times out on a connection whose input had stopped
(the socket's queue for that peer full, or the peer's name taken by another
connection) and which has since hung up: in_event() only marks the error there,
leaving the engine for restart_input() (measured: HEARTBEAT_IVL alone did not
abort; with HEARTBEAT_TIMEOUT too, every time). So the sockets clients connect to
(rep.py, the broker's front end) set no heartbeats; the clients do. Each test is
a client that gets a connection into that state, hangs up, and checks the server
lives on past the heartbeat and serves.
"""

import signal
import time

import pytest
import zmq
from conftest import (
    check_echo_client,
    check_sha_client,
    start_broker,
    start_rep,
    start_worker,
)

PAST_A_PING = 4.5  # s: a heartbeat (1 s ping, 3 s timeout) has timed out by then


def start_server(spawn, script):
    """(the process, where clients connect): rep.py working slowly, or a broker
    with no server, so that requests queue up unread."""
    if script == "rep.py":
        return start_rep(spawn, "--work", 0.5, "--quiet")
    broker, front, _ = start_broker(spawn)
    return broker, front


def check_alive_and_serving(spawn, proc, script, endpoint):
    deadline = time.monotonic() + PAST_A_PING
    while time.monotonic() < deadline:
        assert proc.popen.poll() is None, f"{script} died: {proc.stderr_lines[-3:]}"
        time.sleep(0.1)
    if script == "rep.py":
        proc.send(signal.SIGINT)  # it has a backlog of slow requests: start it afresh
        assert proc.wait() == 0, proc.stderr
        _, endpoint = start_rep(spawn, "--quiet")
        check_sha_client(spawn("c.py", "--connect", endpoint, "--count", 2, "--interval", 0), 2)
    else:
        broker_back = proc.wait_for(r"servers on (tcp://[^\s,]+)").group(1)
        start_worker(spawn, broker_back, args=["--quiet"])
        client = spawn("mreq.py", "--connect", endpoint, "--count", 2, "--interval", 0)
        check_echo_client(client, 2)
        assert proc.popen.poll() is None


@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_a_client_that_floods_and_hangs_up_cannot_abort_the_server(spawn, zctx, script):
    proc, endpoint = start_server(spawn, script)
    flood = zctx.socket(zmq.DEALER)
    flood.setsockopt(zmq.SNDHWM, 0)  # queue all of them here: the server's queue fills
    flood.connect(endpoint)
    for n in range(5000):
        flood.send_multipart([b"", b"flood %d" % n])
    time.sleep(0.5)  # loopback carries them in milliseconds: the server's queue is full
    flood.close(linger=0)
    check_alive_and_serving(spawn, proc, script, endpoint)


@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_connections_under_one_name_cannot_abort_the_server(spawn, zctx, script):
    """Four connections that give one name, as two names for one server did."""
    proc, endpoint = start_server(spawn, script)
    twins = []
    for _ in range(4):
        twin = zctx.socket(zmq.DEALER)
        twin.setsockopt(zmq.ROUTING_ID, b"one name")
        twin.connect(endpoint)
        twins.append(twin)
    deadline, sent = time.monotonic() + 3, 0
    while time.monotonic() < deadline and proc.popen.poll() is None:
        for twin in twins:
            try:
                twin.send_multipart([b"", b"x %d" % sent], zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                pass
        time.sleep(0.001)
    for twin in twins:
        twin.close(linger=0)
    check_alive_and_serving(spawn, proc, script, endpoint)
