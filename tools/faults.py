#!/usr/bin/env python3
"""faults.py: do your changed client and server still survive every fault?

Your assignment changes what a server answers (answer) and what a client asks and
checks (new_request, check_reply). This runs your copies through the tutorial's
faults, with three clients making 40 checked round trips each, and passes a fault
only if every client ends with status 0, 40 verified, 0 mismatched: nothing lost.

    python tools/faults.py --client player.py --server architect.py
    python tools/faults.py --client mreq.py --server worker.py --only bd

  a. Ctrl-C a server while clients run, then start it again;
  b. kill -9 a server at work on a request (--work 0.5), then start a new one;
  c. kill every server, wait until a client resends, then start them again;
  d. freeze one of two servers (SIGSTOP, as Ctrl-Z does) until the clients are done;
  e. kill -9 the broker, then start it again on the same ports.

A server whose --help lists --bind (rep.py) serves the clients directly, as in Part 1,
for a and b (c to e: SKIP); one that connects (mrep.py) runs in pairs behind the broker
(--broker, by default this repository's msgqueue.py) for all five. One line per fault,
PASS, FAIL or SKIP and why; exit status 0 only if none failed. Standard library only.
"""

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository, for its msgqueue.py
CLIENTS, COUNT, INTERVAL, TIMEOUT = 3, 40, 0.05, 1.0  # the clients' --count and so on
WAIT = 10.0  # seconds for a process to show it is ready (it normally takes well under one)
FINISH = 25.0  # seconds the clients have to finish once the fault is in
GOT, RESEND = r"^python: received '", r"resending"  # a server took a request; a client resent
DONE = re.compile(r"done, (\d+) replies verified, (\d+) mismatched$")
CHANGED = threading.Condition()  # notified whenever any process prints a line or ends


class Failure(Exception):
    """Why a scenario failed, in one line."""


def until(test, timeout):
    """Wait until test() is true, looking again whenever a process prints; False on timeout."""
    deadline = time.monotonic() + timeout
    with CHANGED:
        while not test():
            if (left := deadline - time.monotonic()) <= 0:
                return False
            CHANGED.wait(min(left, 0.1))
    return True


class Proc:
    """A script in a process group of its own; threads collect what it prints."""

    def __init__(self, script, flags):
        self.popen = subprocess.Popen(
            [sys.executable, str(script), *map(str, flags)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="backslashreplace", start_new_session=True,
        )  # fmt: skip
        self.pid, self.label = self.popen.pid, f"{script.name} (pid {self.popen.pid})"
        self.lines, self.meant_to_die = [], False  # stdout and stderr, line by line
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.popen.stdout:
            with CHANGED:
                self.lines.append(line.rstrip("\n"))
                CHANGED.notify_all()
        with CHANGED:
            CHANGED.notify_all()

    @property
    def ended(self):
        """Exited, and everything it printed has been read."""
        return self.popen.poll() is not None and not self.reader.is_alive()

    def count(self, regex):
        return sum(1 for line in self.lines if re.search(regex, line))

    def last(self):
        return (self.lines or ["(nothing)"])[-1]  # of a traceback: the error

    def expect(self, regex, count=1, doing="to start"):
        """Wait until `count` lines match regex, or fail saying why not."""
        until(lambda: self.count(regex) >= count or self.ended, WAIT)
        if self.count(regex) < count:
            why = f"exited {self.popen.returncode}" if self.ended else f"waited {WAIT:g} s"
            raise Failure(f"{self.label} {why} waiting {doing}; its last line: {self.last()!r}")

    def reap(self):
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # SIGKILL ends a frozen process too
        self.popen.wait()
        self.reader.join(WAIT)
        self.popen.stdout.close()


def free_endpoint():  # a port nobody uses now: the system picks it for a bind to port 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


class Lab:
    """One scenario's processes: clients and a server (Part 1), or the broker, clients
    and two servers. The first server is the victim. close() kills all that still run."""

    def __init__(self, opts):
        self.opts, self.procs, self.clients, self.servers, self.broker = opts, [], [], [], None
        self.front, self.back = free_endpoint(), free_endpoint()  # back: the broker's servers

    def setup(self, work):
        """Start them all, and wait until each server has taken a request."""
        if not self.opts.binder:
            self.broker = self.start_broker()
        # The clients first, so that all of them begin together as the first server comes up.
        flags = ["--connect", self.front, "--count", COUNT, "--interval", INTERVAL, "--timeout"]
        client = self.opts.client
        self.clients = [self.start(client, [*flags, TIMEOUT], "connecting") for _ in range(CLIENTS)]
        self.servers = [self.start_server(work)]
        if not self.opts.binder:
            self.servers.append(self.start_server())
        for server in self.servers:
            server.expect(GOT, doing="for a request")

    def start(self, script, flags, ready):
        proc = Proc(script, flags)
        self.procs.append(proc)  # before waiting: one that fails to start is reaped too
        proc.expect(ready)
        return proc

    def start_broker(self):
        flags = ["--frontend", self.front, "--backend", self.back]
        return self.start(self.opts.broker, flags, "broker up")

    def start_server(self, work=0):
        if self.opts.binder:
            return self.start(self.opts.server, ["--bind", self.front, "--work", work], "serving")
        flags = ["--connect", self.back, "--work", work]
        return self.start(self.opts.server, flags, "connected to broker at")

    def resends(self):
        return sum(c.count(RESEND) for c in self.clients)

    def fault(self, proc, signum):
        """Send the fault's signal, once sure every client is still at work; the exit status."""
        for client in self.clients:
            if client.popen.poll() is not None:
                raise Failure(f"{client.label} ended before the fault: {client.last()!r}")
        proc.meant_to_die = signum != signal.SIGSTOP
        os.kill(proc.pid, signum)
        if proc.meant_to_die and not until(lambda: proc.ended, WAIT):
            raise Failure(f"{proc.label} still running {WAIT:g} s after {signum.name}")
        return proc.popen.returncode

    def outage(self, timeout=TIMEOUT + 1):
        """Let the clients run without the victim until one resends; False if none did."""
        before = self.resends()
        return until(lambda: self.resends() > before, timeout)

    def finish(self):
        """Check that every client ends with status 0, COUNT verified, 0 mismatched."""
        deadline = time.monotonic() + FINISH
        for c in self.clients:
            if not until(lambda c=c: c.ended, max(0.0, deadline - time.monotonic())):
                raise Failure(f"{c.label} not done {FINISH:g} s after the fault: {c.last()!r}")
            mismatch = [line for line in c.lines if "mismatch:" in line]
            done = [m for m in map(DONE.search, c.lines) if m]
            if c.popen.returncode or not done or done[-1].groups() != (str(COUNT), "0") or mismatch:
                said = done[-1].group(0) if done else f"its last line: {c.last()!r}"
                first = f"; first mismatch: {mismatch[0]!r}" if mismatch else ""
                raise Failure(f"{c.label} exited {c.popen.returncode}, {said}{first}")
        if self.deaths():
            raise Failure(f"the clients finished, but{self.deaths()[1:]}")
        return f"{CLIENTS} clients x {COUNT} replies verified, {self.resends()} resend(s)"

    def deaths(self):
        """'; NAME died: ...' for each server or broker that ended unasked."""
        died = [p for p in self.procs if p not in self.clients and p.ended and not p.meant_to_die]
        return "".join(f"; {p.label} died ({p.popen.returncode}): {p.last()!r}" for p in died)

    def close(self):
        for proc in self.procs:
            proc.reap()


def ctrl_c(lab):
    victim = lab.servers[0]
    if status := lab.fault(victim, signal.SIGINT):
        raise Failure(f"{victim.label} exited {status} on Ctrl-C, not 0: {victim.last()!r}")
    lab.outage()
    lab.servers[0] = lab.start_server()
    return lab.finish()


def kill_at_work(lab):  # the victim runs with --work 0.5: it is at work on a request
    lab.fault(lab.servers[0], signal.SIGKILL)
    lab.outage()
    lab.servers[0] = lab.start_server()  # a new one, without --work: the clients catch up
    return lab.finish()


def all_gone(lab):
    for server in lab.servers:
        lab.fault(server, signal.SIGKILL)
    if not lab.outage(TIMEOUT + WAIT):
        raise Failure(f"no client resent in {TIMEOUT + WAIT:g} s with every server gone")
    lab.servers = [lab.start_server() for _ in lab.servers]
    return lab.finish()


def frozen(lab):
    victim = lab.servers[0]
    lab.fault(victim, signal.SIGSTOP)
    try:
        return lab.finish() + f"; {victim.label} frozen throughout"
    finally:
        os.kill(victim.pid, signal.SIGCONT)


def broker_restart(lab):
    lab.fault(lab.broker, signal.SIGKILL)
    lab.broker = lab.start_broker()
    for server in lab.servers:
        server.expect("connected to broker at", 2, doing="to reconnect to the new broker")
    return lab.finish()


SCENARIOS = {  # letter: (what it does, how, the victim's --work, whether it needs the broker)
    "a": ("Ctrl-C a server while clients run, start it again", ctrl_c, 0, False),
    "b": ("kill -9 a server at work (--work 0.5), start a new one", kill_at_work, 0.5, False),
    "c": ("kill every server, start them again once a client resends", all_gone, 0, True),
    "d": ("freeze one of two servers (SIGSTOP) until the clients are done", frozen, 0, True),
    "e": ("kill -9 the broker, start it again on the same ports", broker_restart, 0, True),
}


def inspect(path, *flags):
    """Exit with one line unless `path` is a script whose --help lists `flags`; its --help."""
    if not path.is_file():
        sys.exit(f"faults.py: {path}: no such file")
    command = [sys.executable, str(path), "--help"]
    try:
        helped = subprocess.run(command, capture_output=True, text=True, timeout=WAIT, check=False)
    except subprocess.TimeoutExpired:
        sys.exit(f"faults.py: {path} --help did not finish in {WAIT:g} s")
    if helped.returncode != 0:
        sys.exit(f"faults.py: {path} --help failed: {(helped.stderr or '?').splitlines()[-1]}")
    if missing := [flag for flag in flags if flag not in helped.stdout]:
        sys.exit(f"faults.py: {path}'s --help lists no {', '.join(missing)}: the right script?")
    return helped.stdout


def stop(signum, frame):
    """Ctrl-C and the like: exit through main's finally, which kills every process."""
    for later in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(later, signal.SIG_IGN)  # and let nothing interrupt that
    sys.exit(128 + signum)


def main():
    parser = argparse.ArgumentParser(description="Run fault scenarios against your scripts.")
    parser.add_argument("--client", type=Path, default=Path("c.py"), help="default c.py")
    parser.add_argument("--server", type=Path, default=Path("rep.py"), help="default rep.py")
    parser.add_argument("--broker", type=Path, default=ROOT / "msgqueue.py",
                        help="default: this repository's msgqueue.py")  # fmt: skip
    parser.add_argument("--only", default="abcde", metavar="LETTERS", help="say, --only bd")
    opts = parser.parse_args()
    if not opts.only or set(opts.only) - set(SCENARIOS):
        parser.error("--only takes letters from abcde")
    inspect(opts.client, "--connect", "--count", "--interval", "--timeout")
    helped = inspect(opts.server, "--work")
    opts.binder = "--bind" in helped
    if not opts.binder and "--connect" not in helped:
        sys.exit(f"faults.py: {opts.server}'s --help lists neither --bind nor --connect")
    if not opts.binder:
        inspect(opts.broker, "--frontend", "--backend")
    where = "directly (Part 1)" if opts.binder else f"through {opts.broker.name}"
    print(f"{opts.client.name} asking {opts.server.name} {where}", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    failed = False
    for letter in dict.fromkeys(opts.only):
        title, scenario, work, needs_broker = SCENARIOS[letter]
        if needs_broker and opts.binder:
            why = "need a server that connects to the broker (--connect), as mrep.py does"
            print(f"SKIP {letter}. {title}: {opts.server.name} binds (--bind); these {why}")
            continue
        started, lab = time.monotonic(), Lab(opts)
        try:
            lab.setup(work)
            verdict = "PASS " + scenario(lab)
        except Failure as err:
            verdict, failed = f"FAIL {err}{lab.deaths()}", True
        finally:
            lab.close()
        word, why = verdict.split(" ", 1)
        print(f"{word} {letter}. {title}: {why} ({time.monotonic() - started:.1f} s)", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
