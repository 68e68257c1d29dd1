"""Output that cannot be written never costs a request or prints a traceback.

A reader that goes away (`rep.py | tee log` and Ctrl-C, `msgqueue.py | head -1`,
a closed terminal), a full disk, a terminal that cannot show a character: the
servers and the broker carry on silently, the clients stop as on Ctrl-C (status
0), and what a terminal cannot show is escaped (CONTRACT.md, behaviour 12).
"""

import os
import re
import signal

import pytest
import zmq
from conftest import (
    ANY_PORT,
    WAIT,
    check_echo_client,
    check_sha_client,
    sha_reply,
    start_broker,
    start_rep,
    start_worker,
)


class Piped:
    """A script whose stdout is a pipe of the test's own: the test reads it line
    by line, and closes it when the script's reader is to go away."""

    def __init__(self, spawn, script, *args):
        read_end, write_end = os.pipe()
        self.proc = spawn(script, *args, stdout=write_end)
        os.close(write_end)  # only the script holds it now: EOF once the script exits
        self.stdout = os.fdopen(read_end, errors="backslashreplace")

    def wait_for(self, pattern):
        for line in self.stdout:
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"stdout ended before a line matching {pattern!r}")

    def reader_goes_away(self):
        self.stdout.close()


def ascii_only_env():
    """A terminal that shows ASCII only: the POSIX locale, without UTF-8 mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONIO"))}
    return {**env, "LC_ALL": "POSIX", "PYTHONUTF8": "0"}


def assert_clean_exit(proc):
    assert proc.wait() == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize("server", ["rep.py", "mrep.py"])
def test_server_whose_reader_went_away_answers_the_request_in_hand(spawn, zctx, server):
    """`rep.py | tee log`, then Ctrl-C in that terminal: tee is gone before the
    server prints its next line, and the request it holds is answered all the same."""
    if server == "rep.py":
        piped = Piped(spawn, server, "--bind", ANY_PORT, "--work", "1")
        endpoint = piped.wait_for(r"serving sha1 on (tcp://[^\s,]+)").group(1)
    else:
        _, endpoint, backend = start_broker(spawn)
        piped = Piped(spawn, server, "--connect", backend, "--work", "1")
        piped.wait_for("connected to broker at")
    client = zctx.socket(zmq.REQ)
    client.connect(endpoint)
    client.send(b"in hand")
    piped.wait_for("received 'in hand'")
    piped.reader_goes_away()
    piped.proc.send(signal.SIGINT)  # during its second of work
    assert client.poll(WAIT * 1000), f"{server} did not answer the request in hand"
    assert client.recv() == (b"in hand" if server == "mrep.py" else sha_reply(b"in hand"))
    assert_clean_exit(piped.proc)


def test_broker_whose_reader_went_away_keeps_brokering(spawn):
    """`msgqueue.py | head -1`: its next line (a server connecting) cannot be
    written, and it brokers on, silently, until Ctrl-C."""
    piped = Piped(spawn, "msgqueue.py", "--frontend", ANY_PORT, "--backend", ANY_PORT)
    frontend, backend = piped.wait_for(
        r"clients on (tcp://\S+), servers on (tcp://[^\s,]+)"
    ).groups()
    piped.reader_goes_away()
    start_worker(spawn, backend)  # the broker's "server connected" line fails
    client = spawn("mreq.py", "--connect", frontend, "--count", "3", "--interval", "0")
    check_echo_client(client, 3)
    piped.proc.send(signal.SIGINT)
    assert_clean_exit(piped.proc)


@pytest.mark.parametrize("client", ["c.py", "mreq.py"])
def test_client_whose_reader_went_away_stops_with_status_0(spawn, client):
    """`c.py | head -3`: once head is gone, the client stops as on Ctrl-C, so the
    pipeline ends instead of running on unseen."""
    if client == "c.py":
        _, endpoint = start_rep(spawn)
    else:
        _, endpoint, backend = start_broker(spawn)
        start_worker(spawn, backend)
    piped = Piped(spawn, client, "--connect", endpoint, "--interval", "0.05")
    for _ in range(3):
        piped.wait_for("sending data|received the original")
    piped.reader_goes_away()
    assert_clean_exit(piped.proc)


@pytest.mark.parametrize("script", ["rep.py", "c.py", "msgqueue.py", "mrep.py", "mreq.py"])
def test_every_script_works_with_a_full_disk_for_stdout(spawn, tmp_path, script):
    """`> /dev/full`: every line fails to be written, from the first. Servers and
    the broker serve regardless; a client stops at once, with status 0. (ipc
    endpoints: a binder's port cannot be read from output that is not there.)"""
    front, back = f"ipc://{tmp_path}/front", f"ipc://{tmp_path}/back"
    with open("/dev/full", "w") as full:

        def run(name, *args):
            return spawn(name, *args, **({"stdout": full} if name == script else {}))

        if script in ("rep.py", "c.py"):
            started = [run("rep.py", "--bind", front)]
            client = run("c.py", "--connect", front, "--count", "2", "--interval", "0")
        else:
            started = [run("msgqueue.py", "--frontend", front, "--backend", back)]
            started.append(run("mrep.py", "--connect", back))
            client = run("mreq.py", "--connect", front, "--count", "2", "--interval", "0")
    if script == client.name:
        assert_clean_exit(client)  # it stopped at its first line, as on Ctrl-C
        return
    (check_sha_client if script == "rep.py" else check_echo_client)(client, 2)
    [quiet] = [proc for proc in started if proc.name == script]
    quiet.send(signal.SIGINT)
    assert_clean_exit(quiet)


@pytest.mark.parametrize("server", ["rep.py", "mrep.py"])
def test_a_request_a_terminal_cannot_show_is_answered_and_shown_escaped(spawn, zctx, server):
    """An ASCII-only terminal and a request of accented letters: the server
    answers it and shows them escaped. (Before, one such request, resent from
    server to server, took down every one.)"""
    if server == "rep.py":
        proc = spawn(server, "--bind", ANY_PORT, env=ascii_only_env())
        endpoint = proc.wait_for(r"serving sha1 on (tcp://[^\s,]+)").group(1)
    else:
        _, endpoint, backend = start_broker(spawn)
        proc = spawn(server, "--connect", backend, env=ascii_only_env())
        proc.wait_for("connected to broker at")
    client = zctx.socket(zmq.REQ)
    client.connect(endpoint)
    request = "résumé".encode()
    client.send(request)
    assert client.poll(WAIT * 1000), proc.stderr_lines
    assert client.recv() == (request if server == "mrep.py" else sha_reply(request))
    proc.wait_for(r"received 'r\\xe9sum\\xe9' from client")
    proc.send(signal.SIGINT)
    assert_clean_exit(proc)


@pytest.mark.parametrize("client", ["c.py", "mreq.py"])
def test_a_reply_a_terminal_cannot_show_is_shown_escaped(spawn, zctx, client):
    """A server that answers in accented letters, to a client on an ASCII-only
    terminal: the client says the reply does not match, escaped, and exits 1."""
    server = zctx.socket(zmq.REP)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    proc = spawn(client, "--connect", f"tcp://127.0.0.1:{port}", "--count", "1",
                 env=ascii_only_env())  # fmt: skip
    assert server.poll(WAIT * 1000), proc.stderr_lines
    server.recv_multipart()
    server.send("résumé".encode())
    assert proc.wait() == 1, proc.stderr
    assert proc.stderr == ""
    assert re.search(r"mismatch: .*got 'r\\xe9sum\\xe9'$", proc.lines[-2])
