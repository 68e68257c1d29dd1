"""--secret PHRASE: a system only peers that know the phrase can join (CONTRACT.md
behaviour 14), and two servers that never share one endpoint.

With --secret every socket is CURVE, its keys derived from the phrase. libzmq
then makes a peer's pipe only once its handshake succeeded, so a peer with
another phrase, or none, is never dealt a request and never counted; the side
that was refused says so once, naming the likely cause. The suite's core fault
tests run again with REQREP_SECRET set (.ci/run), so that everything else holds
with it too.
"""

import contextlib
import os
import re
import signal
import socket

import pytest
import zmq
from conftest import (
    DIGEST_RE,
    RESEND_RE,
    SERVER_GOT_RE,
    WAIT,
    check_echo_client,
    check_line_formats,
    check_sha_client,
    curve_keys,
    sha_reply,
    start_broker,
    start_rep,
    start_worker,
    without_secret,
)

PHRASE = "correct horse battery staple"
ENDED_RE = re.compile(r"(server|broker) at (\S+) ended the handshake \((.*)\)$")
NO_HANDSHAKE = "no ZeroMQ handshake with"
COUNT_RE = re.compile(r"(server connected|server left|connection closed), (.*) connected now$")


def ended(proc):
    return [m.groups() for m in map(ENDED_RE.search, proc.lines) if m]


def test_only_peers_with_the_phrase_join_and_the_refused_say_why_once(spawn):
    secret = ("--secret", PHRASE)
    broker, front, back = start_broker(spawn, *secret)
    good = start_worker(spawn, back, args=secret)
    other = spawn("mrep.py", "--connect", back, "--secret", "another phrase")
    none = spawn("mrep.py", "--connect", back, env=without_secret())
    for worker in (other, none):
        worker.wait_for(NO_HANDSHAKE)
    client = spawn("mreq.py", "--connect", front, *secret, "--count", 10, "--interval", 0)
    check_echo_client(client, 10)
    counts = [m.groups() for m in map(COUNT_RE.search, broker.lines) if m]
    assert counts == [("server connected", "1")], "only the server with the phrase is counted"
    assert len(good.matches(SERVER_GOT_RE)) == 10

    # Clients refused: each says why once, however many times it resends.
    wrong = spawn("mreq.py", "--connect", front, "--secret", "nope", "--timeout", 0.3)
    plain = spawn("mreq.py", "--connect", front, "--timeout", 0.3, env=without_secret())
    for refused, why in ((wrong, "a different --secret, or none?"),
                         (plain, "it has a --secret, this one none")):  # fmt: skip
        refused.wait_for(ENDED_RE)
        seen = len(refused.matches(RESEND_RE))
        refused.wait_for(RESEND_RE, count=seen + 3)
        assert ended(refused) == [("broker", front, why)]
    for proc in (wrong, plain, other, none):
        proc.send(signal.SIGINT)
        assert proc.wait() == 0
        check_line_formats(proc)
    for worker in (other, none):
        assert not worker.matches(SERVER_GOT_RE), f"{worker.args}: never dealt a request"
        told = [line for line in worker.lines if NO_HANDSHAKE in line]
        assert len(told) == 1
        assert "not the same --secret" in told[0]


def test_a_client_refused_for_a_mismatch_tries_again_and_is_served_later(spawn):
    # After a mechanism mismatch libzmq never reconnects to that endpoint; the
    # client connects anew, so a server restarted without --secret serves it.
    # By a host name: libzmq names a retried connection by its address instead.
    rep, endpoint = start_rep(spawn, "--secret", PHRASE)
    by_name = endpoint.replace("127.0.0.1", "localhost")
    client = spawn("c.py", "--connect", by_name, "--timeout", 0.3, "--interval", 0,
                   env=without_secret())  # fmt: skip
    client.wait_for("it has a --secret, this one none")
    rep.send(signal.SIGINT)
    assert rep.wait() == 0
    start_rep(spawn, bind=endpoint)  # REQREP_SECRET is unset in the client only
    client.wait_for(DIGEST_RE, count=2)
    client.send(signal.SIGINT)
    assert client.wait() == 0
    assert ended(client) == [("server", by_name, "it has a --secret, this one none")]
    assert "Traceback" not in client.stderr


def test_a_busy_server_refused_by_one_broker_serves_through_the_other(spawn):
    # The refused broker is retried every 100-200 ms while the server works, so that
    # its ends pile up in the monitor: each is followed once, none is fatal.
    _, front, back = start_broker(spawn, "--secret", PHRASE)
    _, _, other = start_broker(spawn, "--secret", "another phrase")
    worker = spawn("mrep.py", "--connect", back, "--connect", other, "--secret", PHRASE,
                   "--work", 0.5)  # fmt: skip
    worker.wait_for(NO_HANDSHAKE)
    client = spawn("mreq.py", "--connect", front, "--secret", PHRASE, "--count", 4,
                   "--interval", 0)  # fmt: skip
    check_echo_client(client, 4)
    worker.send(signal.SIGINT)
    assert worker.wait() == 0, worker.stderr
    check_line_formats(worker)


def test_a_phrase_is_the_same_however_its_accents_were_typed(spawn):
    rep, endpoint = start_rep(spawn, "--secret", "caf\u00e9")  # é, one character
    client = spawn("c.py", "--connect", endpoint, "--secret", "cafe\u0301", "--count", 1)
    check_sha_client(client, 1)  # e and a combining accent: the same phrase


def test_a_refusing_server_is_named_once_as_it_was_given(spawn):
    # A server with another phrase hangs up; libzmq tries again by itself, and names
    # each retry by the address "localhost" led to. The line names it as given, once.
    rep, endpoint = start_rep(spawn, "--secret", PHRASE)
    by_name = endpoint.replace("127.0.0.1", "localhost")
    client = spawn("c.py", "--connect", by_name, "--secret", "another", "--timeout", 0.3)
    client.wait_for(ENDED_RE)
    seen = len(client.matches(RESEND_RE))
    client.wait_for(RESEND_RE, count=seen + 3)  # a dozen retries, by then
    client.send(signal.SIGINT)
    assert client.wait() == 0
    assert ended(client) == [("server", by_name, "a different --secret, or none?")]


def test_a_client_with_a_secret_told_the_server_has_none(spawn):
    rep, endpoint = start_rep(spawn, env=without_secret())
    client = spawn("c.py", "--connect", endpoint, "--secret", PHRASE, "--timeout", 0.3)
    client.wait_for(ENDED_RE)
    client.send(signal.SIGINT)
    assert client.wait() == 0
    # The client cannot always tell: the server may hang up before it reads why.
    assert [why for *_, why in ended(client)] in (
        ["it has no --secret"],
        ["a different --secret, or none?"],
    )
    assert not rep.matches(SERVER_GOT_RE)


def test_a_web_request_held_open_on_the_back_end_is_refused_at_once(spawn):
    # Without --secret libzmq takes it for a ZeroMQ 1.0 server and deals it requests.
    broker, front, back = start_broker(spawn, "--secret", PHRASE)
    start_worker(spawn, back, args=["--secret", PHRASE])
    host, port = back.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT) as browser:
        browser.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):  # or a reset: the request unread
            while browser.recv(4096):  # the broker's greeting, then its end of file
                pass
        client = spawn("mreq.py", "--connect", front, "--secret", PHRASE, "--count", 10,
                       "--interval", 0)  # fmt: skip
        check_echo_client(client, 10)
    assert not client.matches(RESEND_RE)


def test_max_size_counts_the_data_and_every_handshake_fits(spawn, zctx):
    # CURVE makes each frame 33 bytes longer; --max-size still means the data. And
    # the largest handshake frame (a routing id of 255 bytes) fits the least limit.
    public, _ = curve_keys(PHRASE)
    rep, endpoint = start_rep(spawn, "--secret", PHRASE, "--max-size", 512, "--quiet")

    def client(name):
        sock = zctx.socket(zmq.REQ)
        sock.curve_serverkey = public
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.setsockopt(zmq.ROUTING_ID, name)
        sock.setsockopt(zmq.RCVTIMEO, 2000)
        sock.connect(endpoint)
        return sock

    fits, too_big = client(b"x" * 255), client(b"y" * 255)
    fits.send(b"a" * 512)
    assert fits.recv() == sha_reply(b"a" * 512)
    too_big.send(b"b" * 513)
    with pytest.raises(zmq.Again):  # that peer was dropped: no reply
        too_big.recv()
    fits.send(b"c")
    assert fits.recv() == sha_reply(b"c"), "the others are served on"


@pytest.mark.parametrize("script", ["rep.py", "mrep.py", "c.py", "mreq.py", "msgqueue.py"])
def test_an_empty_phrase_is_refused_not_ignored(spawn, script):
    for proc in (
        spawn(script, "--secret", ""),
        spawn(script, env={**os.environ, "REQREP_SECRET": ""}),
    ):
        assert proc.wait() == 2
        assert proc.stderr.splitlines()[-1].endswith(
            "error: --secret needs a phrase (it, or REQREP_SECRET, is empty)"
        )


def test_the_phrase_can_come_from_the_environment(spawn):
    # Other users can read a process's arguments (ps), not its environment.
    env = {**os.environ, "REQREP_SECRET": PHRASE}
    rep, endpoint = start_rep(spawn, env=env)
    check_sha_client(spawn("c.py", "--connect", endpoint, "--count", 2, "--interval", 0,
                           "--secret", PHRASE), 2)  # fmt: skip
    plain = spawn("c.py", "--connect", endpoint, "--count", 1, "--retries", 0,
                  "--timeout", 0.5, env=without_secret())  # fmt: skip
    assert plain.wait() == 1
    assert len(rep.matches(SERVER_GOT_RE)) == 2, "the client without it was never served"


# Two servers never share one endpoint.


def start_binder(spawn, script, endpoint):
    if script == "rep.py":
        proc = spawn("rep.py", "--bind", endpoint)
    else:
        proc = spawn("msgqueue.py", "--frontend", endpoint, "--backend", "tcp://127.0.0.1:*")
    proc.wait_for("serving sha1 on|broker up")
    return proc


def bind_again(spawn, script, endpoint):
    """A second binder on the same endpoint: it must refuse, in one line."""
    flag = "--bind" if script == "rep.py" else "--frontend"
    proc = spawn(script, flag, endpoint)
    assert proc.wait() == 1
    assert proc.lines == []
    return proc.stderr.splitlines()


@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_a_second_server_on_a_live_ipc_path_refuses_and_the_first_serves_on(spawn, tmp_path,
                                                                           script):  # fmt: skip
    endpoint = f"ipc://{tmp_path}/s.sock"
    first = start_binder(spawn, script, endpoint)
    assert bind_again(spawn, script, endpoint) == [
        f"{script}: cannot bind {endpoint}: in use by a server"
    ]
    if script == "rep.py":
        check_sha_client(spawn("c.py", "--connect", endpoint, "--count", 1), 1)
        assert len(first.matches(SERVER_GOT_RE)) == 1
    else:  # the first broker still has its path: a client's request waits there for a server
        client = spawn("mreq.py", "--connect", endpoint, "--timeout", 0.3)
        client.wait_for(RESEND_RE)
        assert not ended(client)


@pytest.mark.parametrize("script", ["rep.py", "msgqueue.py"])
def test_a_second_server_on_a_tcp_port_in_use_refuses(spawn, script):
    first = start_binder(spawn, script, "tcp://127.0.0.1:*")
    endpoint = re.search(r"(tcp://127\.0\.0\.1:\d+)", first.lines[0]).group(1)
    assert bind_again(spawn, script, endpoint) == [
        f"{script}: cannot bind {endpoint}: Address already in use"
    ]
    assert first.popen.poll() is None


def test_an_ipc_path_left_by_an_earlier_run_is_reused_and_a_plain_file_kept(spawn, tmp_path):
    path = tmp_path / "s.sock"
    first = start_binder(spawn, "rep.py", f"ipc://{path}")
    first.send(signal.SIGINT)
    assert first.wait() == 0
    assert path.exists(), "libzmq leaves a named path behind"
    start_binder(spawn, "rep.py", f"ipc://{path}")  # the stale one: free
    notes = tmp_path / "notes.txt"
    notes.write_text("my homework")
    assert bind_again(spawn, "rep.py", f"ipc://{notes}") == [
        f"rep.py: cannot bind ipc://{notes}: a file that is not a socket is there"
    ]
    assert notes.read_text() == "my homework"
