"""Shared test machinery: run the real scripts as processes, read their lines live, reap them.

Every process is started in its own session (its own process group), and the
`spawn` fixture kills every group it started when the test ends, pass or fail.
Binders are given port `*` (libzmq picks a free one) and the test reads the
real endpoint from the startup line, so tests never race for ports and never
touch the default ports a demo may be using.
"""

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANY_PORT = "tcp://127.0.0.1:*"
WAIT = 20.0  # seconds; a ceiling for events that normally take milliseconds

SENT_RE = re.compile(r"^python \(pid=(\d+)\): sending data: '(.*)'$")
DIGEST_RE = re.compile(r"^python \(pid=(\d+)\): received sha1 of data: ([0-9a-f]{40})$")
ECHO_RE = re.compile(
    r"^\d\d-\d\d-\d\d \d\d:\d\d:\d\d python \(pid=(\d+)\) received the original data: "
    r"([qwertyuiop]{10} \(from client pid=(\d+)\))$"
)
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
    rf"{_ME} client connecting to tcp://\S+(, tcp://\S+)*",
    rf"{_ME} no (reply within|server reachable for|broker reachable for) [\d.]+ s, "
    r"(resending \(retry \d+\)|giving up after \d+ retries)",
    rf"{_ME} done, \d+ replies verified, \d+ mismatched",
    rf"{_ME} interrupted, exiting",
]
LINE_FORMATS = {
    "rep.py": [
        rf"{_ME} serving sha1 on tcp://\S+",
        SERVER_GOT_RE.pattern,
        SHA_BACK_RE.pattern,
        rf"{_ME} stopped",
    ],
    "c.py": [
        SENT_RE.pattern,
        DIGEST_RE.pattern,
        rf"{_ME} sha1 mismatch: expected [0-9a-f]{{40}}, got '.*'",
        *_CLIENT_EVENTS,
    ],
    "msgqueue.py": [
        rf"{_ME} broker up, clients on tcp://\S+, servers on tcp://\S+",
        rf"{_ME} stopped",
    ],
    "mrep.py": [
        rf"{_ME} echo server connecting to tcp://\S+(, tcp://\S+)*",
        rf"{_ME} connected to broker at tcp://\S+",
        rf"{_ME} lost broker at tcp://\S+, reconnecting",
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


class Proc:
    """One running script: its output lines (with arrival times) as they come."""

    def __init__(self, script, *args, env=None, ignore_sigint=False, program=None):
        """Run ROOT/script with this Python, or `program` (another command) if given."""
        self.name = script
        self.args = [str(a) for a in args]
        command = [program] if program else [sys.executable, str(ROOT / script)]
        command += self.args
        if ignore_sigint:  # as a shell does for a command started with "&"
            command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="backslashreplace",
            start_new_session=True,
            env=env,
        )
        self.pid = self.popen.pid
        self.stamped = []  # (time.monotonic(), line) for each stdout line
        self.stderr_lines = []
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, False), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, is_stdout):
        for line in stream:
            with self.changed:
                if is_stdout:
                    self.stamped.append((time.monotonic(), line.rstrip("\n")))
                else:
                    self.stderr_lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    @property
    def lines(self):
        with self.changed:
            return [line for _, line in self.stamped]

    @property
    def stderr(self):
        self.wait()
        return "\n".join(self.stderr_lines)

    def matches(self, regex):
        return [m for m in map(regex.match, self.lines) if m]

    def wait_for(self, regex, count=1, timeout=WAIT):
        """Block until `count` stdout lines match; return the last match. Fails on exit or
        timeout, showing what the process printed."""
        if isinstance(regex, str):
            regex = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [m for m in (regex.search(line) for _, line in self.stamped) if m]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                exited = self.popen.poll() is not None and not any(
                    r.is_alive() for r in self.readers
                )
                if left <= 0 or exited:
                    pytest.fail(
                        f"{self.name} {' '.join(self.args)} printed {len(found)} of {count} "
                        f"lines matching {regex.pattern!r} "
                        f"({'exited ' + str(self.popen.returncode) if exited else 'timed out'})."
                        f"\nstdout tail: {self.lines[-15:]}\nstderr: {self.stderr_lines[-15:]}"
                    )
                self.changed.wait(min(left, 0.5))

    def send(self, signum):
        self.popen.send_signal(signum)

    def wait(self, timeout=WAIT):
        """The exit status, once the process has exited and all it printed has been read."""
        try:
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} {' '.join(self.args)} did not exit within {timeout} s")
        for reader in self.readers:
            reader.join(WAIT)
        return status

    def stop(self):
        """Ctrl-C, and check it exits cleanly; afterwards `lines` is all it ever printed."""
        self.send(signal.SIGINT)
        assert self.wait() == 0, self.stderr

    def reap(self):
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()
        for reader in self.readers:
            reader.join(WAIT)
        self.popen.stdout.close()
        self.popen.stderr.close()


@pytest.fixture
def spawn():
    """spawn(script, *args) starts a script; every process started is killed at the end."""
    procs = []

    def start(script, *args, **kwargs):
        proc = Proc(script, *args, **kwargs)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.reap()
        for proc in procs:  # shown by pytest only when the test failed
            print(f"--- {proc.name} {' '.join(proc.args)} -> {proc.popen.returncode}")
            events = [line for line in proc.lines if not PER_REQUEST_RE.match(line)]
            print("\n".join(events[-30:] + proc.lines[-4:] + proc.stderr_lines[-20:]))


def start_rep(spawn, *args, bind=ANY_PORT):
    """rep.py on a free port (or `bind`); returns (process, real endpoint)."""
    proc = spawn("rep.py", "--bind", bind, *args)
    return proc, proc.wait_for(r"serving sha1 on (tcp://\S+)$").group(1)


def start_broker(spawn, *args, frontend=ANY_PORT, backend=ANY_PORT):
    """msgqueue.py; returns (process, frontend endpoint, backend endpoint)."""
    proc = spawn("msgqueue.py", "--frontend", frontend, "--backend", backend, *args)
    ready = proc.wait_for(r"broker up, clients on (tcp://\S+), servers on (tcp://\S+)$")
    return proc, ready.group(1), ready.group(2)


def start_worker(spawn, *backends, args=()):
    """mrep.py connected (handshake done) to every broker back end given."""
    proc = spawn("mrep.py", *(a for b in backends for a in ("--connect", b)), *args)
    for backend in backends:
        proc.wait_for(f"connected to broker at {re.escape(backend)}$")
    return proc


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


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worst_gap(proc, regex):
    """Longest time between consecutive matching lines: printed, never asserted."""
    with proc.changed:
        times = [t for t, line in proc.stamped if regex.match(line)]
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)
