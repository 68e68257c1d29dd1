"""Fixtures and checks shared by the tests. The process machinery is in harness.py.

The `spawn` fixture starts scripts and kills every process it started when the
test ends, pass or fail.
"""

import functools
import hashlib
import os
import re
import shutil
import subprocess

import pytest
import zmq

# Re-exported: the tests take everything from here.
from harness import (  # noqa: F401
    ANY_PORT,
    ROOT,
    WAIT,
    Proc,
    cpu_seconds,
    curve_keys,
    processes,
    start_broker,
    start_rep,
    start_worker,
    without_secret,
    worst_gap,
)

SENT_RE = re.compile(r"^python \(pid=(\d+)\): sending data: '(.*)'$")
DIGEST_RE = re.compile(r"^python \(pid=(\d+)\): received sha1 of data: ([0-9a-f]{40})$")
ECHO_RE = re.compile(
    r"^\d\d-\d\d-\d\d \d\d:\d\d:\d\d python \(pid=(\d+)\) received the original data: "
    r"([qwertyuiop]{10} \(from client pid=(\d+)\))$"
)
OWNER_RE = re.compile(r"\(from client pid=(\d+)\)$")
SERVER_GOT_RE = re.compile(r"^python: received '(.*)' from client\.$")
SHA_BACK_RE = re.compile(
    r"^python \(pid=(\d+)\): sending back sha1 of the received data: ([0-9a-f]{40})$"
)
ECHO_BACK_RE = re.compile(r"^python \(pid=(\d+)\): sending back the received data: (.*)$")
PER_REQUEST_RE = re.compile(
    "|".join(
        r.pattern for r in (SENT_RE, DIGEST_RE, ECHO_RE, SERVER_GOT_RE, SHA_BACK_RE, ECHO_BACK_RE)
    )
)
RESEND_RE = re.compile(r"^python \(pid=\d+\): no (reply within|\w+ reachable for) .*, resending")

# Every line each script may print, as a pattern. The tests hold real output to
# these, and the README test holds the README's sample output to the same ones.
_ME = r"python \(pid=\d+\):"
_CLIENT_EVENTS = [
    rf"{_ME} client connecting to (tcp|ipc)://\S+(, (tcp|ipc)://\S+)*",
    rf"{_ME} no (reply within|server reachable for|broker reachable for) [\d.]+ s, "
    r"(resending \(retry \d+\)|giving up after \d+ retr(y|ies))",
    rf"{_ME} done, \d+ replies verified, \d+ mismatched",
    rf"{_ME} interrupted, exiting",
    rf"{_ME} (server|broker) at (tcp|ipc)://\S+ ended the handshake \((it has no --secret|"
    r"it has a --secret, this one none|a different --secret, or none\?)\)",
]
LINE_FORMATS = {
    "rep.py": [
        rf"{_ME} serving sha1 on (tcp|ipc)://\S+( \(room for \d+ connections\))?",
        rf"{_ME} at the open-file limit \(.+\): new connections wait; raise the open-file "
        r"limit \(ulimit -n\)",
        SERVER_GOT_RE.pattern,
        SHA_BACK_RE.pattern,
        rf"{_ME} stopped",
    ],
    "c.py": [
        SENT_RE.pattern,
        DIGEST_RE.pattern,
        rf"{_ME} sha1 mismatch: sent '.*', got '.*'",
        *_CLIENT_EVENTS,
    ],
    "msgqueue.py": [
        rf"{_ME} broker up, clients on (tcp|ipc)://\S+, servers on (tcp|ipc)://\S+"
        r"( \(room for \d+ connections\))?",
        rf"{_ME} (server connected|server left|connection closed), \d+( to \d+)? connected now",
        rf"{_ME} no server connected, requests wait",
        rf"{_ME} requests go to a peer the count cannot see \(ZeroMQ older than 4, or not "
        r"ZeroMQ at all: a web browser on the servers' port\?\)",
        rf"{_ME} at the open-file limit \(.+\): new connections wait; raise the open-file "
        r"limit \(ulimit -n\)",
        rf"{_ME} stopped",
    ],
    "mrep.py": [
        rf"{_ME} echo server connecting to (tcp|ipc)://\S+(, (tcp|ipc)://\S+)*",
        rf"{_ME} connected to broker at (tcp|ipc)://\S+",
        rf"{_ME} lost broker at (tcp|ipc)://\S+, reconnecting",
        rf"{_ME} no ZeroMQ handshake with (tcp|ipc)://\S+ \(not a broker's back end, not "
        r"answering, or not the same --secret\); trying again now and then",
        SERVER_GOT_RE.pattern,
        ECHO_BACK_RE.pattern,
        rf"{_ME} stopped",
    ],
    "mreq.py": [
        ECHO_RE.pattern,
        rf"{_ME} echo mismatch: sent '.*', got '.*'",
        *_CLIENT_EVENTS,
    ],
}


def format_of(line, scripts=LINE_FORMATS):
    """The script whose output `line` can be, or None."""
    for script in scripts:
        if any(re.fullmatch(pattern.strip("^$"), line) for pattern in LINE_FORMATS[script]):
            return script
    return None


def check_line_formats(proc):
    for line in proc.lines:
        assert format_of(line, [proc.name]), f"{proc.name} printed an unknown line: {line!r}"


@pytest.fixture
def spawn():
    """spawn(script, *args) starts a script; every process started is killed at the end."""
    with processes() as start:
        yield start
    for proc in start.started:  # shown by pytest only when the test failed
        print(f"--- {proc.name} {' '.join(proc.args)} -> {proc.popen.returncode}")
        events = [line for line in proc.lines if not PER_REQUEST_RE.match(line)]
        print("\n".join(events[-30:] + proc.lines[-4:] + proc.stderr_lines[-20:]))


class SecretSocket(zmq.Socket):
    """A socket that speaks CURVE with the phrase in REQREP_SECRET, as the scripts
    do: a binder holds the secret key, a connector knows the public one."""

    def bind(self, addr):
        self.curve_server = True
        self.curve_secretkey = secret_keys()[1]
        return super().bind(addr)

    def connect(self, addr):
        self.curve_serverkey = secret_keys()[0]  # options first: they apply to what follows
        self.curve_publickey, self.curve_secretkey = zmq.curve_keypair()
        return super().connect(addr)


class SecretContext(zmq.Context):
    _socket_class = SecretSocket


@functools.cache
def secret_keys():
    return curve_keys(os.environ["REQREP_SECRET"])


@pytest.fixture
def zctx():
    """A ZeroMQ context for the test's own sockets, destroyed at the end. With
    REQREP_SECRET set (.ci/run's second pass), its sockets use it as the scripts do."""
    ctx = SecretContext() if os.environ.get("REQREP_SECRET") else zmq.Context()
    # LINGER 0 for every socket it makes: one collected before the end (a local of
    # the test) must not hold up the end with messages for a peer that is gone.
    ctx.setsockopt(zmq.LINGER, 0)
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


def sha_reply(request):
    """What rep.py answers to a request: the hex SHA-1 of all its bytes."""
    return hashlib.sha1(request).hexdigest().encode()


def check_sha_client(proc, count):
    """c.py exited 0 with `count` digests, each the SHA-1 of what it had just sent."""
    assert proc.wait() == 0, proc.stderr
    check_line_formats(proc)
    assert "Traceback" not in proc.stderr
    sent, digests = proc.matches(SENT_RE), proc.matches(DIGEST_RE)
    assert len(digests) == count
    answered = [s.group(2) for s in sent]
    for data, got in zip(answered, digests):
        assert got.group(1) == str(proc.pid)
        assert got.group(2) == hashlib.sha1(data.encode()).hexdigest()
    assert not [line for line in proc.lines if "mismatch:" in line]
    assert (
        proc.lines[-1] == f"python (pid={proc.pid}): done, {count} replies verified, 0 mismatched"
    )


def check_echo_client(proc, count):
    """mreq.py exited 0 with `count` echoes, all distinct and all of its own requests."""
    assert proc.wait() == 0, proc.stderr
    check_line_formats(proc)
    assert "Traceback" not in proc.stderr
    echoes = proc.matches(ECHO_RE)
    assert len(echoes) == count
    assert {(m.group(1), m.group(3)) for m in echoes} == {(str(proc.pid), str(proc.pid))}
    assert len({m.group(2) for m in echoes}) == count  # none answered twice
    assert not [line for line in proc.lines if "mismatch:" in line]
    assert (
        proc.lines[-1] == f"python (pid={proc.pid}): done, {count} replies verified, 0 mismatched"
    )
    return [m.group(2) for m in echoes]


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def unavailable(reason):
    """Skip a test that needs network namespaces, saying why; under CI=true, fail
    instead: CI installs what these tests need, so missing is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"namespace tests cannot run in CI: {reason}")
    pytest.skip(reason)


def check_namespaces_possible():
    if shutil.which("ip") is None or os.geteuid() != 0:
        unavailable("network namespaces need root and iproute2 (the ip command)")
