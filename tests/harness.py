"""Run the real scripts as processes and read their output lines live, with arrival times.

Shared by the tests (through conftest.py) and by benchmarks/bench.py. Every
process starts in its own session (its own process group), so reap() kills all
of it. Binders are given port `*` (libzmq picks a free one) and the caller reads
the real endpoint from the startup line: no races for ports, and never the
default ports a demo may be using.
"""

import contextlib
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANY_PORT = "tcp://127.0.0.1:*"
WAIT = 20.0  # seconds; a ceiling for events that normally take milliseconds


class Proc:
    """One running script: its output lines (with arrival times) as they come."""

    def __init__(
        self, script, *args, env=None, ignore_sigint=False, program=None, stdout=subprocess.PIPE
    ):
        """Run ROOT/script with this Python, or the command `program` (a list) if given.
        `stdout` other than a pipe (a file, a pipe's write end) leaves `lines` empty."""
        self.name = script
        self.args = [str(a) for a in args]
        command = list(program) if program else [sys.executable, str(ROOT / script)]
        command += self.args
        if ignore_sigint:  # as a shell does for a command started with "&"
            command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
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
            threading.Thread(target=self._read, args=(stream, stream is self.popen.stdout))
            for stream in (self.popen.stdout, self.popen.stderr)
            if stream is not None
        ]
        for reader in self.readers:
            reader.daemon = True
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

    def arrivals(self, regex):
        """When each stdout line matching regex reached us (time.monotonic)."""
        with self.changed:
            return [t for t, line in self.stamped if regex.search(line)]

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
                    raise AssertionError(
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
            message = f"{self.name} {' '.join(self.args)} did not exit within {timeout} s"
            raise AssertionError(message) from None
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
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def processes():
    """Yields spawn(script, *args, **Proc options), which starts a Proc and keeps it
    in spawn.started; every process started is killed when the block ends."""

    def spawn(script, *args, **kwargs):
        proc = Proc(script, *args, **kwargs)
        spawn.started.append(proc)
        return proc

    spawn.started = []
    try:
        yield spawn
    finally:
        for proc in spawn.started:
            proc.reap()


def start_rep(spawn, *args, bind=ANY_PORT, **options):
    """rep.py on a free port (or `bind`); returns (process, real endpoint)."""
    proc = spawn("rep.py", "--bind", bind, *args, **options)
    return proc, proc.wait_for(r"serving sha1 on (tcp://[^\s,]+)").group(1)


def start_broker(spawn, *args, frontend=ANY_PORT, backend=ANY_PORT, **options):
    """msgqueue.py; returns (process, frontend endpoint, backend endpoint)."""
    proc = spawn("msgqueue.py", "--frontend", frontend, "--backend", backend, *args, **options)
    ready = proc.wait_for(r"broker up, clients on (tcp://\S+), servers on (tcp://[^\s,]+)")
    return proc, ready.group(1), ready.group(2)


def start_worker(spawn, *backends, args=()):
    """mrep.py connected (handshake done) to every broker back end given."""
    proc = spawn("mrep.py", *(a for b in backends for a in ("--connect", b)), *args)
    for backend in backends:
        proc.wait_for(f"connected to broker at {re.escape(backend)}$")
    return proc


def curve_keys(phrase):
    """The scripts' --secret key pair (public, secret), by their own function (all
    five have the same text), so that the tests' and the benchmark's never drift."""
    return runpy.run_path(str(ROOT / "rep.py"))["curve_keys"](phrase)


def without_secret():
    """This environment without REQREP_SECRET, which scripts would take as --secret
    (the suite runs again with it set: .ci/run)."""
    return {name: value for name, value in os.environ.items() if name != "REQREP_SECRET"}


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worst_gap(proc, regex):
    """Longest time between consecutive matching lines: printed, never asserted."""
    times = proc.arrivals(regex)
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)
