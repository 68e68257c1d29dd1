"""Cross-language: the tutorial's Perl peers (ZMQ::FFI, written for these tests)
talk to the Python scripts over the wire, byte for byte.

Skipped, with the reason, only where Perl's ZMQ::FFI is missing and CI is not
set (Debian: apt-get install libzmq-ffi-perl); under CI a missing package fails."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import (
    ECHO_BACK_RE,
    ECHO_RE,
    check_echo_client,
    check_sha_client,
    start_broker,
    start_rep,
    start_worker,
)

HERE = Path(__file__).resolve().parent
PERL_ECHO_RE = re.compile(r"^perl \(pid=(\d+)\): sending back the received data: (.*)$")


def perl_has_zmq_ffi():
    if shutil.which("perl") is None:
        return False
    probe = ["perl", "-MZMQ::FFI", "-MDigest::SHA", "-e", "ZMQ::FFI->new"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


if not perl_has_zmq_ffi():
    reason = "Perl's ZMQ::FFI is not installed (Debian: apt-get install libzmq-ffi-perl)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run the cross-language tests", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def perl(spawn, name, *args):
    return spawn(name, *args, program=["perl", str(HERE / name)])


def test_c_py_against_the_perl_server(spawn):
    server = perl(spawn, "rep.pl", "tcp://127.0.0.1:*")
    endpoint = server.wait_for(r"^perl \(pid=\d+\): serving sha1 on (tcp://\S+)$").group(1)
    clients = [
        spawn("c.py", "--connect", endpoint, "--count", 5, "--interval", 0) for _ in range(3)
    ]
    for client in clients:
        check_sha_client(client, 5)
    server.wait_for(r"sending back sha1 of the received data: [0-9a-f]{40}$", count=15)


def test_perl_client_against_rep_py(spawn):
    rep, endpoint = start_rep(spawn)
    client = perl(spawn, "req.pl", endpoint, 5)
    assert client.wait() == 0, client.lines
    assert client.lines[-1] == f"perl (pid={client.pid}): done, 5 replies verified, 0 mismatched"
    # Bytes that are not UTF-8 crossed intact, and rep.py shows them escaped.
    got = rep.wait_for(r"^python: received '(perl client .*)' from client\.$").group(1)
    assert got.endswith("café \\x00\\xff")


def test_mreq_through_msgqueue_to_python_and_perl_servers(spawn):
    _, front, back = start_broker(spawn)
    perl_worker = perl(spawn, "mrep.pl", back)
    # With only the Perl server connected, a reply proves it is in the pool.
    check_echo_client(spawn("mreq.py", "--connect", front, "--count", 1), 1)
    python_worker = start_worker(spawn, back)
    clients = [
        spawn("mreq.py", "--connect", front, "--count", 20, "--interval", 0) for _ in range(3)
    ]
    for client in clients:
        check_echo_client(client, 20)
    python_worker.stop()
    perl_worker.reap()
    by_python = {m.group(2) for m in python_worker.matches(ECHO_BACK_RE)}
    by_perl = {m.group(2) for m in perl_worker.matches(PERL_ECHO_RE)}
    assert by_python and by_perl, "both languages served"
    assert not by_python & by_perl  # each request answered once
    echoed = {m.group(2) for c in clients for m in c.matches(ECHO_RE)}
    assert echoed <= by_python | by_perl
