"""One server, many clients: rep.py and c.py (the tutorial's first half)."""

import hashlib
import os
import re
import shutil
import signal
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    DIGEST_RE,
    RESEND_RE,
    ROOT,
    SENT_RE,
    SERVER_GOT_RE,
    SHA_BACK_RE,
    check_line_formats,
    check_sha_client,
    start_broker,
    start_rep,
    start_worker,
)


def test_output_lines_are_the_tutorials_and_show_up_live(spawn):
    rep, endpoint = start_rep(spawn)
    client = spawn("c.py", "--connect", endpoint, "--interval", "0.1")
    # Read through a pipe while the client still runs: lines must be flushed as printed.
    client.wait_for(DIGEST_RE, count=3)
    assert client.popen.poll() is None
    client.send(signal.SIGINT)
    assert client.wait() == 0

    pid = client.pid
    expected_client = [
        rf"python \(pid={pid}\): client connecting to {re.escape(endpoint)}",
        rf"python \(pid={pid}\): sending data: '\w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d \d{{4}}'",
        rf"python \(pid={pid}\): received sha1 of data: [0-9a-f]{{40}}",
        rf"python \(pid={pid}\): interrupted, exiting",
    ]
    for line in client.lines:
        assert any(re.fullmatch(p, line) for p in expected_client), line
    check_line_formats(client)
    for sent, got in zip(client.matches(SENT_RE), client.matches(DIGEST_RE)):
        assert got.group(2) == hashlib.sha1(sent.group(2).encode()).hexdigest()

    rep.send(signal.SIGINT)
    assert rep.wait() == 0
    expected_server = [
        rf"python \(pid={rep.pid}\): serving sha1 on {re.escape(endpoint)}"
        r" \(room for \d+ connections\)",
        SERVER_GOT_RE.pattern,
        SHA_BACK_RE.pattern,
        rf"python \(pid={rep.pid}\): stopped",
    ]
    for line in rep.lines:
        assert any(re.fullmatch(p, line) for p in expected_server), line
    check_line_formats(rep)
    # The server's two lines per request name the client's data and the digest it got.
    received, sent_back = rep.matches(SERVER_GOT_RE), rep.matches(SHA_BACK_RE)
    assert [m.group(1) for m in received][:3] == [m.group(2) for m in client.matches(SENT_RE)][:3]
    assert [m.group(2) for m in sent_back][:3] == [m.group(2) for m in client.matches(DIGEST_RE)][
        :3
    ]


def test_five_clients_each_get_their_own_digests(spawn):
    rep, endpoint = start_rep(spawn)
    clients = [
        spawn("c.py", "--connect", endpoint, "--count", 5, "--interval", 0.05) for _ in range(5)
    ]
    for client in clients:
        check_sha_client(client, 5)
    rep.stop()
    assert len(rep.matches(SHA_BACK_RE)) == 25


def test_server_killed_and_restarted_mid_run_loses_nothing(spawn):
    rep, endpoint = start_rep(spawn)
    client = spawn("c.py", "--connect", endpoint, "--count", 8, "--interval", 0.2, "--timeout", 0.5)
    client.wait_for(DIGEST_RE, count=2)
    rep.send(signal.SIGKILL)
    rep.wait()
    client.wait_for(RESEND_RE)  # the client says it is waiting...
    start_rep(spawn, bind=endpoint)  # ...and a new server on the same port picks it up
    check_sha_client(client, 8)
    assert len(client.matches(SENT_RE)) == 8  # every request sent was answered


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_server_and_client_cleanly(spawn, signum):
    rep, endpoint = start_rep(spawn)
    client = spawn("c.py", "--connect", endpoint, "--interval", 0.05)
    client.wait_for(DIGEST_RE, count=2)
    client.send(signum)
    assert client.wait() == 0
    assert client.stderr == ""
    assert client.lines[-1].endswith("interrupted, exiting")
    rep.send(signum)
    assert rep.wait() == 0
    assert rep.stderr == ""
    assert rep.lines[-1] == f"python (pid={rep.pid}): stopped"


def test_client_without_server_says_so_and_gives_up_when_told(spawn):
    rep, endpoint = start_rep(spawn)  # find a free port, then leave it empty
    rep.send(signal.SIGTERM)
    assert rep.wait() == 0
    client = spawn("c.py", "--connect", endpoint, "--retries", 2, "--timeout", 0.2)
    assert client.wait() == 1
    assert len(client.matches(RESEND_RE)) == 2
    assert client.lines[-1].endswith("no server reachable for 0.2 s, giving up after 2 retries")


OVER = "tcp://127.0.0.1:65536"  # libzmq would quietly make this port 0
SCRIPTS = ["rep.py", "c.py", "msgqueue.py", "mrep.py", "mreq.py"]
CONNECTS = [("c.py", "--connect"), ("mrep.py", "--connect"), ("mreq.py", "--connect")]
FLAGS = [("rep.py", "--bind"), ("msgqueue.py", "--backend"), *CONNECTS]
NOWHERE = "tcp://no-such-host.invalid:5556"  # .invalid never resolves (RFC 2606)


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("rep.py", ["--bind", "nonsense"], "rep.py: cannot bind nonsense: Invalid argument"),
        ("c.py", ["--connect", "tcp://127.0.0.1"], "c.py: cannot connect to tcp://127.0.0.1"),
        ("rep.py", ["--bind", OVER], "port is over 65535"),
        ("c.py", ["--connect", OVER], "port is over 65535"),
        ("msgqueue.py", ["--frontend", OVER], "port is over 65535"),
        ("mrep.py", ["--connect", OVER], "port is over 65535"),
        ("mreq.py", ["--connect", OVER], "port is over 65535"),
        *((s, [f, "tcp://127.0.0.1:\u00b2"], "no port number at its end") for s, f in FLAGS),
        *((s, [f, "inproc://x"], "inproc:// reaches only sockets in the same process")
          for s, f in FLAGS),
        *((s, [f, NOWHERE], "host 'no-such-host.invalid' does not resolve") for s, f in CONNECTS),
        ("c.py", ["--connect", "tcp://127.0.0.1:6180x"], "no port number at its end"),
        ("rep.py", ["--bind", "tcp://127.0.0.1:-1"], "no port number at its end"),  # 65535
        ("mrep.py", ["--connect", "tcp://127.0.0.1:0"], "port 0 is for binding"),
        ("mreq.py", ["--connect", "tcp://a..b:1"], "'a..b' is not a host name"),
        ("msgqueue.py", ["--frontend", "tcp://127.0.0.1:5\udcff"], "not printable"),
    ],
    ids=[
        "rep.py-nonsense", "c.py-no-port", *(f"{s}-over-65535" for s in SCRIPTS),
        *(f"{s}-superscript-port" for s, _ in FLAGS), *(f"{s}-inproc" for s, _ in FLAGS),
        *(f"{s}-unresolvable" for s, _ in CONNECTS),
        "c.py-port-junk", "rep.py-port-junk", "mrep.py-port-0", "mreq.py-bad-name",
        "msgqueue.py-not-utf8",
    ],
)  # fmt: skip
def test_bad_endpoint_is_one_clear_line(spawn, script, args, message):
    proc = spawn(script, *args)
    assert proc.wait() == 1
    assert message in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert proc.lines == []


def test_port_in_use_is_one_clear_line(spawn):
    _, endpoint = start_rep(spawn)
    second = spawn("rep.py", "--bind", endpoint)
    assert second.wait() != 0
    assert second.stderr == f"rep.py: cannot bind {endpoint}: Address already in use"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("c.py", ["--count", "0"]),
        ("c.py", ["--timeout", "0"]),
        ("c.py", ["--timeout", "inf"]),
        ("c.py", ["--interval", "nan"]),
        ("c.py", ["--interval", "x"]),
        ("c.py", ["--retries", "-1"]),
        ("mreq.py", ["--interval", "-1"]),
        ("mreq.py", ["--count", "-3"]),
        ("mrep.py", ["--work", "nan"]),
        ("mrep.py", ["--max-size", "0"]),
        ("rep.py", ["--work", "-1"]),
        ("rep.py", ["--max-size", "0"]),
        ("msgqueue.py", ["--max-size", "-5"]),
        ("msgqueue.py", ["--max-size", "1"]),  # under a handshake: every server flapped
        ("rep.py", ["--max-size", "511"]),
        ("c.py", ["--timeout", "1e-9"]),  # printed 220,000 lines a second, sent nothing
        ("mreq.py", ["--timeout", "0.05"]),
        ("c.py", ["--connect", ""]),  # an unset shell variable: it said nothing, forever
        ("mreq.py", ["--connect", ","]),
        ("mrep.py", ["--connect", ""]),
        ("rep.py", ["--max-size", str(10**20)]),  # an OverflowError traceback, before
    ],
)
def test_bad_numbers_are_refused_by_argparse_naming_only_that_flag(spawn, script, args):
    proc = spawn(script, *args)
    assert proc.wait() == 2
    assert f"{script}: error: " in proc.stderr and "Traceback" not in proc.stderr
    error = proc.stderr.splitlines()[-1]
    assert args[0] in error
    assert not set(re.findall(r"--[\w-]+", error)) - {args[0]}, "it talks about one flag"
    assert proc.lines == []


@pytest.mark.parametrize(
    ("script", "flag"),
    [("c.py", "--connect"), ("mreq.py", "--connect"), ("mrep.py", "--connect"),
     ("rep.py", "--bind"), ("msgqueue.py", "--frontend"), ("msgqueue.py", "--backend")],
)  # fmt: skip
def test_endpoint_without_tcp_gets_a_hint(spawn, script, flag):
    proc = spawn(script, flag, "localhost:5556")
    assert proc.wait() != 0
    assert proc.stderr.endswith("(did you mean tcp://localhost:5556?)")
    assert len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("script", ["c.py", "mreq.py", "mrep.py", "rep.py", "msgqueue.py"])
def test_help_shows_the_endpoint_form_and_every_flag_in_words(script):
    shown = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "tcp://HOST:PORT" in shown
    for cryptic in ("pause (", "resend (", "repeatable (default"):
        assert cryptic not in shown


def test_scripts_are_executable():
    for script in ("c.py", "mreq.py", "mrep.py", "rep.py", "msgqueue.py"):
        assert os.access(ROOT / script, os.X_OK), script


def test_installing_the_project_adds_no_modules_named_c_or_rep():
    roots = [Path(p) for p in [*site.getsitepackages(), site.getusersitepackages()]]
    assert sys.prefix != sys.base_prefix, "the suite runs in the project's virtualenv"
    for root in roots:
        for name in ("c", "rep", "mreq", "mrep", "msgqueue"):
            assert not (root / f"{name}.py").exists()


def test_client_spread_over_two_servers_survives_losing_one(spawn):
    rep_a, endpoint_a = start_rep(spawn)
    rep_b, endpoint_b = start_rep(spawn)
    client = spawn(
        "c.py", "--connect", f"{endpoint_a},{endpoint_b}",
        *("--count", 20, "--interval", 0.05, "--timeout", 1, "--retries", 1),
    )  # fmt: skip
    for rep in (rep_a, rep_b):  # requests are spread over both
        rep.wait_for(SHA_BACK_RE, count=3)
    rep_a.send(signal.SIGKILL)
    rep_a.wait()
    check_sha_client(client, 20)
    # IMMEDIATE: after the one request the crash took, none is queued for the dead server.
    assert len(client.matches(RESEND_RE)) <= 1
    rep_b.stop()
    assert len(rep_a.matches(SHA_BACK_RE)) + len(rep_b.matches(SHA_BACK_RE)) >= 20


def test_count_ends_even_when_every_reply_mismatches(spawn):
    # The issue a newcomer hit: c.py pointed at the broker gets echoes, not digests.
    _, front, back = start_broker(spawn)
    start_worker(spawn, back)
    client = spawn("c.py", "--connect", front, "--count", 2, "--interval", 0)
    assert client.wait() == 1
    assert len([line for line in client.lines if "sha1 mismatch" in line]) == 2
    assert client.lines[-1].endswith("done, 0 replies verified, 2 mismatched")


def test_server_killed_while_it_works_the_request_is_resent_to_the_next(spawn):
    rep, endpoint = start_rep(spawn, "--work", 5)
    client = spawn("c.py", "--connect", endpoint, "--count", 1, "--timeout", 0.5)
    held = rep.wait_for(SERVER_GOT_RE).group(1)  # received, and now "working"
    rep.send(signal.SIGKILL)
    rep.wait()
    assert not rep.matches(SHA_BACK_RE)
    client.wait_for(RESEND_RE)
    restarted, _ = start_rep(spawn, bind=endpoint)
    check_sha_client(client, 1)
    restarted.stop()
    assert [m.group(1) for m in restarted.matches(SERVER_GOT_RE)][0] == held


@pytest.mark.parametrize(("script", "flag"), FLAGS)
def test_a_copied_script_speaks_its_own_name(tmp_path, script, flag):
    """A student copies c.py to player.py: its messages say player.py, not c.py."""
    copy = tmp_path / f"my_{script}"
    shutil.copy(ROOT / script, copy)
    number = "--timeout" if script in ("c.py", "mreq.py") else "--max-size"
    for args, status in (([flag, "inproc://x"], 1), ([number, "-1"], 2)):
        command = [sys.executable, str(copy), *args]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        assert run.returncode == status, run.stderr
        assert run.stderr.splitlines()[-1].startswith(f"my_{script}: "), run.stderr
        assert f" {script}" not in run.stderr.replace(f"my_{script}", "")
