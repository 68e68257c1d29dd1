"""What both clients promise, c.py (part 1) and mreq.py (part 2) alike: they share
their REQ logic, and a student copies either one. Each test runs against both.

The time checks here are lower bounds only (a pause or a timeout lasts at least
so long), which no slow machine can break; how fast things go is the benchmark's.
"""

import re
import signal
import threading
import time

import pytest
import zmq
from conftest import (
    DIGEST_RE,
    ECHO_RE,
    PER_REQUEST_RE,
    RESEND_RE,
    SENT_RE,
    SERVER_GOT_RE,
    WAIT,
    check_echo_client,
    check_sha_client,
    sha_reply,
    start_broker,
    start_rep,
    start_worker,
)

CLIENTS = ["c.py", "mreq.py"]
REPLY_RE = {"c.py": DIGEST_RE, "mreq.py": ECHO_RE}
# Seconds the server holds each request: A's reply comes after B asked, and B's
# after 2 * HELD, within B's --timeout of 3 * HELD.
HELD = 3
UNANSWERED_RE = re.compile(r"no reply within [\d.]+ s, (resending|giving up)")


def check_client(client, count):
    check = check_sha_client if client.name == "c.py" else check_echo_client
    check(client, count)


def start_service(spawn, script, *server_args):
    """What the client talks to: rep.py for c.py; a broker and one mrep.py for
    mreq.py. Returns (the server, the endpoint the client connects to)."""
    if script == "c.py":
        return start_rep(spawn, *server_args)
    _, front, back = start_broker(spawn)
    return start_worker(spawn, back, args=server_args), front


@pytest.mark.parametrize("script", CLIENTS)
def test_interval_is_the_pause_after_each_reply(spawn, script):
    _, endpoint = start_service(spawn, script)
    client = spawn(script, "--connect", endpoint, "--count", 3, "--interval", 0.5)
    check_client(client, 3)
    replies = client.arrivals(REPLY_RE[script])
    gaps = [b - a for a, b in zip(replies, replies[1:])]
    assert all(gap > 0.25 for gap in gaps), gaps  # at least 0.5 s, less our reading's delay


@pytest.mark.parametrize("script", CLIENTS)
def test_unanswered_request_is_resent_each_timeout_then_given_up(spawn, script):
    server, endpoint = start_service(spawn, script, "--work", 60)  # holds what it gets
    client = spawn(script, "--connect", endpoint, "--timeout", 1, "--retries", 2)
    assert client.wait() == 1
    assert len(client.matches(RESEND_RE)) == 2, client.lines
    assert client.lines[-1].endswith("no reply within 1 s, giving up after 2 retries")
    waits = client.arrivals(UNANSWERED_RE)
    gaps = [b - a for a, b in zip(waits, waits[1:])]
    assert all(gap > 0.5 for gap in gaps), gaps  # each a whole --timeout after its send
    assert len(server.matches(SERVER_GOT_RE)) == 1  # the others still wait behind it


@pytest.mark.parametrize("script", CLIENTS)
def test_one_retry_is_said_in_the_singular(spawn, script):
    _, endpoint = start_service(spawn, script, "--work", 60)
    client = spawn(script, "--connect", endpoint, "--timeout", 0.2, "--retries", 1)
    assert client.wait() == 1
    assert client.lines[-1].endswith("no reply within 0.2 s, giving up after 1 retry")


@pytest.mark.parametrize("script", CLIENTS)
def test_late_reply_is_never_taken_for_a_later_request(spawn, script):
    # Two servers, one slower than --timeout (1.5 s > 1 s), one not (0.2 s): a
    # request dealt to the slow one is resent to the other, and the next one is
    # dealt to the slow one again, which answers the first one 0.3 s later.
    # REQ_CORRELATE must drop that reply; taken, it would be a mismatch. (0.2 s
    # each: by the second request, the client is surely connected to both.)
    if script == "c.py":
        (_, slow), (_, fast) = start_rep(spawn, "--work", 1.5), start_rep(spawn, "--work", 0.2)
        endpoints = [slow, fast]
    else:
        _, front, back = start_broker(spawn)
        start_worker(spawn, back, args=["--work", 1.5])
        start_worker(spawn, back, args=["--work", 0.2])
        endpoints = [front]
    client = spawn(script, "--connect", ",".join(endpoints), "--count", 4, "--interval", 0,
                   "--timeout", 1)  # fmt: skip
    check_client(client, 4)
    assert client.matches(RESEND_RE), "the slow server's requests were resent"


class OwnServer:
    """A REP server of our own, on a thread: answers each request with
    answer(request) after `work` seconds, and counts what it received and
    replied. Bound to a free port (self.endpoint), or connected to `connect`."""

    def __init__(self, ctx, answer, connect=None, work=0):
        self.sock = ctx.socket(zmq.REP)  # LINGER 0, as every socket of zctx
        if connect:
            self.sock.connect(connect)
            self.endpoint = connect
        else:
            self.endpoint = f"tcp://127.0.0.1:{self.sock.bind_to_random_port('tcp://127.0.0.1')}"
        self.answer, self.work = answer, work
        self.received = self.replied = 0
        self.changed = threading.Condition()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.done.is_set():
            if not self.sock.poll(100):
                continue
            request = self.sock.recv()
            self.count("received")
            self.done.wait(self.work)  # "working"
            self.sock.send(self.answer(request))
            self.count("replied")

    def count(self, what):
        with self.changed:
            setattr(self, what, getattr(self, what) + 1)
            self.changed.notify_all()

    def wait_until(self, condition):
        with self.changed:
            assert self.changed.wait_for(condition, WAIT)

    def close(self):
        self.done.set()
        self.thread.join(WAIT)
        self.sock.close()


@pytest.mark.parametrize("script", CLIENTS)
def test_wrong_reply_is_reported_and_fails_a_count_run(spawn, zctx, script):
    lies = [b"0" * 40, b"\xffnot it\n"]  # then the truth
    truth = sha_reply if script == "c.py" else lambda request: request
    liar = OwnServer(zctx, lambda request: lies.pop(0) if lies else truth(request))
    try:
        client = spawn(script, "--connect", liar.endpoint, "--count", 3, "--interval", 0)
        assert client.wait() == 1
    finally:
        liar.close()
    mismatches = [line for line in client.lines if "mismatch:" in line]
    assert len(mismatches) == 2, client.lines  # never counted as verified...
    assert "got '\\xffnot it\\n'" in mismatches[1]  # ...and shown escaped, on one line
    assert client.lines[-1].endswith("done, 1 replies verified, 2 mismatched")


@pytest.mark.parametrize("script", CLIENTS)
def test_reply_from_before_a_broker_restart_reaches_its_own_client(spawn, zctx, script):
    # A new broker hands out the same connection ids as the old one did (libzmq
    # seeds them identically in every process). A reply the server finishes
    # after the restart carries the old broker's id for client A; the new
    # broker must not deliver it to client B, who now holds that id.
    # The server is the test's own DEALER, so that it can hold A's request while
    # it takes B's: A's old reply then reaches the new broker while B is on it.
    broker, front, back = start_broker(spawn)
    answer = sha_reply if script == "c.py" else lambda request: request
    server = zctx.socket(zmq.DEALER)
    server.connect(back)

    def take():  # [client id, request id, "", request], as the broker passes them on
        assert server.poll(WAIT * 1000), "no request reached the server"
        return server.recv_multipart()

    def reply(frames):
        server.send_multipart(frames[:-1] + [answer(frames[-1])])

    a = spawn(script, "--connect", front, "--count", 1, "--timeout", HELD)
    from_a = take()
    a.send(signal.SIGSTOP)  # A cannot reconnect to the new broker first
    broker.send(signal.SIGKILL)
    broker.wait()
    start_broker(spawn, frontend=front, backend=back)
    if script == "c.py":  # c.py sends the time: B's request must differ from A's
        sent_by_a = a.wait_for(SENT_RE).group(2)
        while time.ctime() == sent_by_a:
            time.sleep(0.05)  # waiting for the clock's next second, not for a process
    b = spawn(script, "--connect", front, "--count", 1, "--timeout", 3 * HELD)
    from_b = take()  # B is connected to the new broker
    # A's old reply must go nowhere, even made to look like the answer to B's request
    # (B's request id, which REQ_CORRELATE would check): only A's name can stop it...
    reply([from_a[0], from_b[1], *from_a[2:]])
    reply(from_b)
    check_client(b, 1)  # ...not to B
    a.send(signal.SIGCONT)
    reply(take())  # A resends to the new broker
    check_client(a, 1)


@pytest.mark.parametrize("script", CLIENTS)
def test_quiet_drops_the_per_request_lines_and_keeps_the_events(spawn, script):
    server, endpoint = start_service(spawn, script, "--quiet")
    client = spawn(script, "--connect", endpoint, "--count", 3, "--interval", 0, "--quiet")
    assert client.wait() == 0
    me = f"python (pid={client.pid}):"
    assert client.lines == [
        f"{me} client connecting to {endpoint}",
        f"{me} done, 3 replies verified, 0 mismatched",
    ]
    server.stop()
    assert not [line for line in server.lines if PER_REQUEST_RE.match(line)], server.lines
    assert len(server.lines) == (2 if script == "c.py" else 3)  # startup (connected), stopped
    # With nobody to answer, what happens is still said: each resend, and giving up.
    alone = spawn(script, "--connect", endpoint, "--quiet", "--timeout", 0.2, "--retries", 1)
    assert alone.wait() == 1
    events = [line.split(": ", 1)[1] for line in alone.lines[1:]]
    assert len(events) == 2, alone.lines
    assert re.fullmatch(r"no .* 0.2 s, resending \(retry 1\)", events[0])
    assert re.fullmatch(r"no .* 0.2 s, giving up after 1 retry", events[1])
