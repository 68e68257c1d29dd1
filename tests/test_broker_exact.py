"""The broker's count of servers where connections interleave, and a request that
reaches a server whole or not at all (CONTRACT.md behaviours 8 and 11).

The broker counts servers from its back end's monitor (msgqueue.py, ServerCount),
and libzmq 4.3.5's events say little: HANDSHAKE_SUCCEEDED names no connection
(src/stream_engine_base.cpp, mechanism_ready), so every connection open at that
moment may be the server; a connection that ends before its handshake has
HANDSHAKE_FAILED_NO_DETAIL reported just before its DISCONNECTED (error(), same
file), so it is never taken for a server leaving. These tests put connections of
their own (mostly plain TCP sockets) before, during and after a server's
handshake, in the orders that would fool a simpler count; the last test shows
where libzmq breaks that rule, and the count saying it cannot tell ("0 to 1")
rather than a wrong number.

They wait for what libzmq has done, never for a time: the broker greets every
connection it accepts at once, after reporting ACCEPTED (create_engine() in
src/stream_listener_base.cpp), so a raw socket's first byte says it is counted as
open; and the broker closes a connection right after reporting its end, so a raw
socket's end of file, or the broker's open sockets in /proc, say it is reported.
"""

import contextlib
import os
import random
import re
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
import zmq
from conftest import (
    ECHO_BACK_RE,
    OWNER_RE,
    RESEND_RE,
    WAIT,
    check_echo_client,
    check_line_formats,
    cpu_seconds,
    start_broker,
    start_worker,
)

COUNT_RE = re.compile(
    r"(server connected|server left|connection closed), (-?\d+(?: to \d+)?) connected now$"
)
NO_SERVER = "no server connected, requests wait"
UNSEEN = "requests go to a peer the count cannot see"
# ZMTP 3.0 (rfc.zeromq.org/spec/23): signature, version 3.0, mechanism NULL, as-server 0.
ZMTP3_GREETING = b"\xff" + bytes(8) + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\0") + bytes(32)
# ZMTP 1.0 (spec 13), unversioned: the peer's identity, an empty frame (length 1, flags 0).
ZMTP1_GREETING = b"\x01\x00"


def ready(socket_type):
    """ZMTP 3's READY command, for the NULL mechanism, naming a socket type."""
    body = b"\x05READY\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type
    return bytes([0x04, len(body)]) + body


def counts(broker):
    """Each count line the broker printed, as (what happened, how many now): how
    many is "2", or "1 to 2" where the broker cannot tell."""
    found = map(COUNT_RE.search, broker.lines)
    return [(m.group(1), m.group(2)) for m in found if m]


def said(broker, text):
    return [line for line in broker.lines if text in line]


def address(endpoint):
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def connect_raw(endpoint, first=b""):
    """A TCP connection of the test's own (sending `first`), once the broker has
    accepted it and reported that: its first byte of greeting has come."""
    sock = socket.create_connection(address(endpoint), timeout=WAIT)
    sock.sendall(first)
    assert sock.recv(1) == b"\xff", "the broker greets every connection it accepts"
    return sock


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"connection ended after {len(data)} of {size} bytes")
        data += chunk
    return data


def hang_up(sock):
    """Close a raw connection, and return once the broker has closed its end too:
    it reports a connection's end (HANDSHAKE_FAILED_*, DISCONNECTED) just before."""
    with contextlib.suppress(OSError):  # the broker may have cut it first
        sock.shutdown(socket.SHUT_WR)
    with contextlib.suppress(ConnectionResetError):
        while sock.recv(65536):
            pass
    sock.close()


def reset(endpoint):
    """A port scan: connect, then drop the connection with a TCP reset at once."""
    sock = socket.create_connection(address(endpoint), timeout=WAIT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def open_sockets(pid):
    """How many sockets a process has open (listening or connected)."""
    found = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # a file closed meanwhile
            found += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return found


def wait_until(condition, what):
    """Poll a kernel state, which has no line to wait for, until it holds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def proxy_running(pid):
    """Whether the broker's proxy thread runs: its only thread other than the main
    one that takes signals (libzmq's own threads block every signal)."""
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # one just ended
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            blocked = int(status.split("SigBlk:")[1].split()[0], 16)
            if tid != pid and not blocked & (1 << (signal.SIGTERM - 1)):
                return True
    return False


def read_zmtp1(stream):
    """One message from a ZMTP 1.0 byte stream: a length (that of the flags byte and
    the body; 0xFF: 8 bytes of it follow), flags (bit 0: more), body, per frame."""
    frames = []
    while True:
        size = stream.read(1)[0]
        if size == 0xFF:
            size = int.from_bytes(stream.read(8), "big")
        flags = stream.read(1)[0]
        frames.append(stream.read(size - 1))
        if not flags & 1:
            return frames


def zmtp1(frames):
    out = b""
    for number, body in enumerate(frames, 1):
        size = len(body) + 1
        out += bytes([size]) if size < 0xFF else b"\xff" + size.to_bytes(8, "big")
        out += bytes([number < len(frames)]) + body
    return out


def echo_zmtp1(sock, got):
    """A ZeroMQ 2 REP server, by hand: every request back as it came, envelope and all
    (what a REP does for an echo). Ends with the connection."""
    stream = sock.makefile("rb")
    with contextlib.suppress(OSError, IndexError):  # IndexError: read(1) at the end
        # The broker's greeting, taken for a ZMTP 1.0 identity: 0xFF, length 1, 0x7F.
        assert stream.read(10) == b"\xff" + (1).to_bytes(8, "big") + b"\x7f"
        while True:
            frames = read_zmtp1(stream)
            got.append(frames)
            sock.sendall(zmtp1(frames))


@contextlib.contextmanager
def relay_held_until_junk(back):
    """A TCP relay between one mrep.py and the broker. It connects to the broker, then
    opens a junk connection, and only then lets the server's bytes through: the
    broker has the junk open when the server's handshake succeeds. Yields the
    endpoint for mrep.py, and release(), which returns the junk connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    sockets, pumps = [listener], []

    def pump(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # a server that died: the broker sees it go

    def release():
        server_side, _ = listener.accept()
        broker_side = connect_raw(back)  # accepted: the server's connection is open
        junk = connect_raw(back)  # accepted too, before the handshake can even begin
        sockets.extend((server_side, broker_side, junk))
        for sock in (server_side, broker_side):
            sock.settimeout(None)
        server_side.sendall(b"\xff")  # the byte of the broker's greeting read above
        for source, sink in ((server_side, broker_side), (broker_side, server_side)):
            pumps.append(threading.Thread(target=pump, args=(source, sink), daemon=True))
            pumps[-1].start()
        return junk

    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}", release
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in pumps:
            thread.join(WAIT)


def check_idle_while_a_request_waits(spawn, broker, front):
    """A client's request waits in the broker; between two of its resends, the
    broker sleeps. (Idle, it wakes ten times a second: about 0.01 s CPU in 0.6 s.
    A spinning proxy costs all of a core, over 0.1 s even on a loaded machine.)"""
    client = spawn("mreq.py", "--connect", front, "--interval", 0, "--timeout", 0.3)
    client.wait_for(RESEND_RE)
    cpu_at, wall_at = cpu_seconds(broker.pid), time.monotonic()
    client.wait_for(RESEND_RE, count=3)
    cpu, wall = cpu_seconds(broker.pid) - cpu_at, time.monotonic() - wall_at
    print(f"broker CPU {cpu:.2f} s in {wall:.2f} s while a request waits")
    assert cpu < wall / 10, "the broker spins while requests wait"


@pytest.mark.parametrize("junk_arrives", ["after-handshake", "during-handshake"])
def test_server_killed_while_a_half_open_connection_stays(spawn, junk_arrives):
    broker, front, back = start_broker(spawn)
    with contextlib.ExitStack() as stack:
        if junk_arrives == "after-handshake":
            worker = start_worker(spawn, back)
            broker.wait_for("server connected, 1 connected now")
            junk = connect_raw(back)  # sends nothing, ever
        else:  # the order a count that trusts the newest connection gets wrong
            relay, release = stack.enter_context(relay_held_until_junk(back))
            worker = spawn("mrep.py", "--connect", relay)
            junk = release()
            worker.wait_for(f"connected to broker at {relay}$")
            broker.wait_for("server connected, 1 connected now")
        worker.send(signal.SIGKILL)
        worker.wait()
        if junk_arrives == "after-handshake":  # the server was known for one
            broker.wait_for("server left, 0 connected now")
            broker.wait_for(NO_SERVER)
        else:  # either one may have been the server: the broker says it cannot tell
            broker.wait_for("connection closed, 0 to 1 connected now")
        # The junk connection is still open: no pipe to a DEALER without a handshake
        # (session_base.cpp, engine_ready), so the back end cannot take the request.
        check_idle_while_a_request_waits(spawn, broker, front)
        assert not said(broker, UNSEEN)
        hang_up(junk)  # its handshake never began: a failure is reported, then its end
        if junk_arrives == "after-handshake":
            assert counts(broker) == [("server connected", "1"), ("server left", "0")]
        else:
            broker.wait_for(NO_SERVER)
            assert counts(broker) == [
                ("server connected", "1"),
                ("connection closed", "0 to 1"),
                ("connection closed", "0"),  # now it knows: the junk was no server
            ]


def test_half_open_connection_closed_after_a_server_connected_is_not_a_server_leaving(spawn):
    broker, front, back = start_broker(spawn)
    junk = connect_raw(back)
    worker = start_worker(spawn, back)
    broker.wait_for("server connected, 1 connected now")  # the junk may be the server
    hang_up(junk)  # its handshake never began: a failure is reported, then its end
    client = spawn("mreq.py", "--connect", front, "--count", 3, "--interval", 0)
    check_echo_client(client, 3)
    owners = {OWNER_RE.search(m.group(2)).group(1) for m in worker.matches(ECHO_BACK_RE)}
    assert owners == {str(client.pid)}, "the server answered the client"
    # A second server's handshake is reported after the junk's end: once the broker
    # has counted it, it has already counted (or not) the junk as a server leaving.
    start_worker(spawn, back)
    broker.wait_for("server connected", count=2)
    assert counts(broker) == [("server connected", "1"), ("server connected", "2")]
    assert not said(broker, NO_SERVER)


def test_zmtp1_peer_alone_is_dealt_requests_and_said_to_be_uncounted(spawn):
    broker, front, back = start_broker(spawn)
    peer = socket.create_connection(address(back), timeout=WAIT)
    peer.sendall(ZMTP1_GREETING)
    got = []
    echo = threading.Thread(target=echo_zmtp1, args=(peer, got), daemon=True)
    echo.start()
    try:
        client = spawn("mreq.py", "--connect", front, "--count", 3, "--interval", 0)
        echoed = check_echo_client(client, 3)
        broker.wait_for(UNSEEN)  # after a second of the back end writable and count 0
    finally:
        with contextlib.suppress(OSError):
            peer.shutdown(socket.SHUT_RDWR)
        echo.join(WAIT)
        peer.close()
    assert counts(broker) == [], "a peer without ZMTP 3 handshake is never counted"
    # Each request reached it whole: the client's name, REQ_CORRELATE's request id,
    # the empty delimiter, the body; and each answer the client took was one of them.
    assert all(len(frames) == 4 and frames[2] == b"" for frames in got), got
    assert {text.encode() for text in echoed} <= {frames[3] for frames in got}


CHAOS_SECONDS = 2
SURVIVORS = 2  # servers still running when the junk is gone
MAX_SERVERS = 4


def open_junk(rng, back, zctx):
    """One connection that is not a server; returns what to close later, or None if
    it closed at once. None of them ends by an error libzmq leaves unreported (see
    the last test): wrong socket types (PUB, PUSH) are left out, and so are bytes
    that libzmq's ZMTP 1.0 decoder refuses (0x00, 0xFF). Those can cost the count
    one when they meet a server's handshake (CONTRACT.md 11), which here, in 28 runs
    with PUB and PUSH among the junk, never happened: a test that failed that rarely
    would say nothing."""
    kind = rng.choice(["scan", "half-open", "text", "greeting", "greeting-held", "plain", "router"])
    if kind == "scan":
        return reset(back)
    if kind == "half-open":
        return connect_raw(back)
    if kind == "text":  # a browser or telnet: bytes taken for ZMTP 1.0 frames
        text = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz /:.\r\n", k=rng.randrange(1, 300)))
        return connect_raw(back, text.encode())
    if kind.startswith("greeting"):  # a valid ZMTP 3 greeting, then nothing
        sock = connect_raw(back, ZMTP3_GREETING)
        return sock if kind == "greeting-held" else hang_up(sock)
    # ZeroMQ with a mechanism the broker refuses; and a ROUTER, which is as good a
    # peer for a DEALER as a REP: a server by the count while it is connected.
    sock = zctx.socket(zmq.DEALER if kind == "plain" else zmq.ROUTER)
    if kind == "plain":
        sock.plain_username, sock.plain_password = b"user", b"secret"
    sock.connect(back)
    return sock


def close_junk(junk):
    if junk is None:  # it closed at once
        return
    if isinstance(junk, socket.socket):
        hang_up(junk)
    else:
        junk.close(linger=0)


def test_count_is_exact_after_servers_and_junk_come_and_go_at_once_stress(spawn, zctx):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    print(f"seed {seed}")
    broker, front, back = start_broker(spawn)
    listening = open_sockets(broker.pid)
    servers, junk = [], []
    started = time.monotonic()
    while time.monotonic() - started < CHAOS_SECONDS:
        action = rng.random()
        if action < 0.25 and len(servers) < MAX_SERVERS:
            servers.append(spawn("mrep.py", "--connect", back))
        elif action < 0.4 and servers:
            victim = servers.pop(rng.randrange(len(servers)))
            # Ctrl-C only once it has said it is up: one that lands during Python's
            # imports can be lost ("Exception ignored in: ..._get_module_lock...cb").
            ready = victim.lines  # its first line comes after its handler is set
            victim.send(rng.choice([signal.SIGKILL, signal.SIGINT]) if ready else signal.SIGKILL)
            victim.wait()
        elif action < 0.75:
            junk.append(open_junk(rng, back, zctx))
        elif junk:
            close_junk(junk.pop(rng.randrange(len(junk))))
        time.sleep(0.02)  # the fault schedule, not a wait for readiness
    for each in junk:
        close_junk(each)
    while len(servers) > SURVIVORS:
        extra = servers.pop()
        extra.send(signal.SIGKILL)
        extra.wait()
    servers += [spawn("mrep.py", "--connect", back) for _ in range(SURVIVORS - len(servers))]
    for server in servers:
        server.wait_for("connected to broker")
    # Quiet now: every other connection closed by the broker, so reported.
    wait_until(lambda: open_sockets(broker.pid) == listening + SURVIVORS, "only servers left")
    client = spawn("mreq.py", "--connect", front, "--count", 20, "--interval", 0)
    check_echo_client(client, 20)
    # Every survivor answered, so its handshake is reported: the broker deals requests
    # only on a connection whose handshake is done, and reports that in the same step.
    assert all(server.matches(ECHO_BACK_RE) for server in servers)
    unseen_before = len(said(broker, UNSEEN))
    for server in servers:
        server.stop()
    wait_until(lambda: open_sockets(broker.pid) == listening, "every connection closed")
    # A ZeroMQ 2 peer: the broker says it cannot see it only with its count at 0 for
    # a second, after all the events before (each turn reads all the monitor holds).
    marker = connect_raw(back, ZMTP1_GREETING)
    broker.wait_for(UNSEEN, count=unseen_before + 1)
    hang_up(marker)
    found = counts(broker)
    print(f"{len(found)} counts printed; the last: {found[-SURVIVORS - 1 :]}")
    assert found[-SURVIVORS - 1][1] == str(SURVIVORS), "the count when only they ran"
    assert found[-SURVIVORS:] == [("server left", str(n)) for n in reversed(range(SURVIVORS))]
    last = broker.lines[-3:]
    assert last[0].endswith("server left, 0 connected now") and last[1].endswith(NO_SERVER)
    assert UNSEEN in last[2], last
    assert all(not shown.startswith("-") for _, shown in found), found
    assert not said(broker, "open-file limit")
    check_line_formats(broker)


def test_request_half_moved_when_a_send_gives_up_is_dropped_whole(spawn, zctx):
    # As in test_signals.py's pile-up test: a burst of the proxy that begins when
    # room for 500 came back, with more than 500 requests waiting, fills the way to
    # the server midway; the next request's first frame (the client's name) is read
    # from the front end, its send waits for room and gives up after SNDTIMEO. The
    # rest of that request is still in the front end, and must be dropped there: a
    # later turn would send it as a request of its own, its envelope cut off.
    broker, front, back = start_broker(spawn)
    pile = zctx.socket(zmq.DEALER)  # a client that need not wait for replies
    pile.setsockopt(zmq.SNDHWM, 10)  # so it sees at once when the broker takes more
    pile.setsockopt(zmq.ROUTING_ID, b"pile")
    pile.connect(front)
    kernel_send_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    filler = b"x" * max(16 * 1024, kernel_send_max // 200)  # the kernel holds < 200
    sent = []

    def send_until_full():
        for _ in range(100_000):
            if not pile.poll(1000, zmq.POLLOUT):
                return
            sent.append(b"%08d" % len(sent))
            pile.send_multipart([b"", sent[-1] + filler], zmq.NOBLOCK)
        raise AssertionError(f"{len(sent)} requests went in: the broker never filled up")

    send_until_full()
    assert len(sent) > 1000  # no server yet: they wait in the broker
    server = zctx.socket(zmq.DEALER)  # a server that reads only when told to
    server.setsockopt(zmq.RCVHWM, 10)
    server.setsockopt(zmq.RCVBUF, 64 * 1024)
    server.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # its pings keep the broker from dropping it
    server.setsockopt(zmq.HEARTBEAT_TIMEOUT, 600_000)
    server.connect(back)
    broker.wait_for("server connected, 1 connected now")
    assert pile.poll(WAIT * 1000, zmq.POLLOUT), "the broker took no request"
    send_until_full()  # the first burst, 1000, filled the way to the server exactly
    received = []

    def receive(count):
        for _ in range(count):
            assert server.poll(WAIT * 1000), f"the server got {len(received)} requests"
            received.append(server.recv_multipart())

    receive(500)  # room for 500 comes back; the next burst fills it
    assert pile.poll(WAIT * 1000, zmq.POLLOUT), "the broker took no more requests"
    # Its turn ends only when the send gives up: the server reads nothing meanwhile.
    wait_until(lambda: not proxy_running(broker.pid), "the proxy's send gave up")
    # Then read all but as many as may have been dropped: at most one per burst.
    receive(len(sent) - 500 - (len(sent) // 500 + 1))
    cut = [frames for frames in received if frames[:2] != [b"pile", b""] or len(frames) != 3]
    shown = [[frame[:10] for frame in frames] for frames in cut[:3]]
    assert not cut, f"{len(cut)} requests arrived without their envelope, such as {shown}"
    numbers = [int(frames[2][:8]) for frames in received]
    assert numbers == sorted(numbers), "in the order sent"
    gaps = [b - a for a, b in zip(numbers, numbers[1:]) if b - a != 1]
    print(f"{len(sent)} requests sent, {len(received)} read, gaps {gaps}")
    assert gaps, "no send gave up: this test saw nothing"
    assert set(gaps) == {2}, "a request half moved is dropped, and only that one"
    assert broker.popen.poll() is None and "Traceback" not in "\n".join(broker.stderr_lines)


# Where the events cannot tell. For some protocol errors libzmq 4.3.5 reports no
# HANDSHAKE_FAILED_* before DISCONNECTED: error(protocol_error) assumes the error
# was reported where it was found, and these paths do not: a Socket-Type the DEALER
# refuses (parse_metadata, src/mechanism.cpp: EINVAL), and any frame the decoder
# refuses, such as one over MAXMSGSIZE during the handshake (src/v2_decoder.cpp) or
# a ZMTP 1.0 frame of length 0 (src/v1_decoder.cpp). A connection open when a
# server's handshake succeeded, that ends so, may be that server leaving or not:
# the broker says it cannot tell ("0 to 1 connected now"), never a wrong number,
# until later events settle it. Not only in "the same moment": a ZMTP 3 peer may
# sit in its handshake for HANDSHAKE_IVL (30 s), a ZMTP 1.0 one for as long as it
# likes.
UNREPORTED = {  # how to open the junk, and the bytes it then dies of
    "wrong-socket-type": (ZMTP3_GREETING, ready(b"PUB")),
    "frame-over-max-size": (ZMTP3_GREETING, b"\x06" + (2**30).to_bytes(8, "big")),
    "zmtp1-empty-frame": (ZMTP1_GREETING, b"\x00"),
}


@pytest.mark.parametrize("how", UNREPORTED)
def test_junk_that_ends_like_a_server_leaves_the_count_unsure_never_wrong(spawn, how):
    opening, fatal = UNREPORTED[how]
    broker, front, back = start_broker(spawn)
    junk = connect_raw(back, opening)
    if opening == ZMTP3_GREETING:  # the rest of the greeting, and READY: it is handshaking
        recv_exactly(junk, 63)
        recv_exactly(junk, recv_exactly(junk, 2)[1])
    first = start_worker(spawn, back)
    broker.wait_for("server connected, 1 connected now")  # the junk may be the server
    junk.sendall(fatal)
    hang_up(junk)
    broker.wait_for("connection closed, 0 to 1 connected now")  # truly: 1
    check_echo_client(spawn("mreq.py", "--connect", front, "--count", 3, "--interval", 0), 3)
    second = start_worker(spawn, back)
    broker.wait_for("server connected, 1 to 2 connected now")  # truly: 2
    first.stop()
    broker.wait_for("server left, 0 to 1 connected now")  # truly: 1
    second.stop()
    broker.wait_for(NO_SERVER)  # now it knows
    assert counts(broker) == [
        ("server connected", "1"),
        ("connection closed", "0 to 1"),
        ("server connected", "1 to 2"),
        ("server left", "0 to 1"),
        ("connection closed", "0"),
    ]
    assert len(said(broker, NO_SERVER)) == 1


def test_a_reply_comes_back_while_no_server_can_take_a_request(spawn, zctx):
    """The proxy stops while no server can take a request; replies must still get
    through. The common case is a last server's reply to the request in hand, sent
    as it leaves on Ctrl-C: it waited in the broker for the next server (1 CI run
    in a few). Here the one server's way is full, so the proxy stops, and then
    the server answers one request: its reply must reach the client at once."""
    broker, front, back = start_broker(spawn)
    server = zctx.socket(zmq.DEALER)  # a server that reads only when told to
    server.setsockopt(zmq.RCVHWM, 10)
    server.setsockopt(zmq.RCVBUF, 64 * 1024)
    server.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # its pings keep the broker from dropping it
    server.setsockopt(zmq.HEARTBEAT_TIMEOUT, 600_000)
    server.connect(back)
    broker.wait_for("server connected, 1 connected now")
    client = zctx.socket(zmq.DEALER)
    client.setsockopt(zmq.SNDHWM, 10)  # so it sees when the broker takes no more
    client.connect(front)
    kernel_send_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    filler = b"x" * max(16 * 1024, kernel_send_max // 200)  # the kernel holds < 200
    for n in range(100_000):  # until the broker takes no more: the way is full
        if not client.poll(1000, zmq.POLLOUT):
            break
        client.send_multipart([b"", b"%08d" % n + filler], zmq.NOBLOCK)
    else:
        raise AssertionError("the broker never filled up")
    wait_until(lambda: not proxy_running(broker.pid), "the proxy's turn ended")
    request = server.recv_multipart()
    server.send_multipart(request[:-1] + [b"answer"])  # the answer to the first
    assert client.poll(WAIT * 1000), "the reply waits in the broker"
    assert client.recv_multipart() == [b"", b"answer"]
