#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""msgqueue.py: the broker. ROUTER for clients in front, DEALER for servers behind.

With many servers, something has to choose one for each request and notice
servers come and go. This broker does: clients (mreq.py) connect to its front,
servers (mrep.py) to its back, and neither needs to know about the other. The
ROUTER tags each request with the client connection it came from and routes the
reply back by that tag; the DEALER deals requests round-robin to the servers.

The pattern, as the zguide writes it (a test runs this very code):

    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    frontend.bind("tcp://127.0.0.1:5559")
    backend = context.socket(zmq.DEALER)
    backend.bind("tcp://127.0.0.1:5560")
    zmq.proxy(frontend, backend)  # both ways, inside libzmq: no Python per message

Run it first, then servers (mrep.py) and clients (mreq.py) in other terminals:

    python msgqueue.py                 # clients on 5559, servers on 5560

Try: start and stop servers (this terminal shows each come and go); Ctrl-C it
and start it again (everyone reconnects by themselves); a second broker on other
ports with everyone pointed at both (--connect twice): kill either, work goes on.
"""

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

try:
    import resource  # the open-file limit; not on Windows, which has none to raise
except ImportError:
    resource = None

FRONTEND_ENDPOINT = "tcp://127.0.0.1:5559"  # clients (mreq.py) connect here
BACKEND_ENDPOINT = "tcp://127.0.0.1:5560"  # servers (mrep.py) connect here
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
MIN_SIZE = 512  # bytes; ZeroMQ's own handshake sends frames of up to 296
BACKLOG = 4096  # connections the OS holds while waiting to be accepted (a class at once)
SPARE_FILES = 32  # open files the broker itself needs besides its connections
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each peer every second; drop it after 3 s silent
POLL_MS = 100  # the proxy runs in turns this long; the main loop looks up between them
REFUSING_EVERY = 10  # seconds between two lines about the open-file limit
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name


def broker(frontend, backend, monitors, stop):
    """The pattern: zmq.proxy(frontend, backend), in turns, each begun only while
    a server can take a request: libzmq's proxy spins at 100% CPU while requests
    wait and none can (libzmq issue 4071), and nothing tells when it does."""
    proxy, servers = Proxy(frontend, backend), ServerCount()
    idle, busy = zmq.Poller(), zmq.Poller()
    for monitor in monitors:
        idle.register(monitor, zmq.POLLIN)
        busy.register(monitor, zmq.POLLIN)
    idle.register(backend, zmq.POLLIN | zmq.POLLOUT)  # only between turns: then it is ours
    try:
        while not stop:
            for sock, _ in (busy if proxy.thread else idle).poll(POLL_MS):
                while sock is not backend and sock.poll(0):
                    servers.follow(recv_monitor_message(sock))
            proxy.stop()  # a turn ends after POLL_MS, or at once when something happened
            # POLLOUT: some server is connected and has room for a request.
            writable = backend.poll(0, zmq.POLLOUT)
            servers.check_unseen(writable)
            if writable and not stop:
                proxy.start()
            else:  # replies may still come, such as a last server's, sent as it left
                pass_back(backend, frontend)
    finally:
        proxy.close()


def pass_back(backend, frontend):
    """Between turns, pass on the replies that come all the same, one by one."""
    while backend.poll(0):
        frontend.send_multipart(backend.recv_multipart())


def say(line):
    # flush=True: one line per event, visible at once even through a pipe.
    try:
        print(line, flush=True)
    except OSError:  # nobody reads any more (a closed pipe, a closed terminal, a full disk)
        stop_printing()  # and carry on: a request in hand is answered all the same


def stop_printing():
    """Send stdout to the null device: every later line goes nowhere, and none fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class Proxy:
    """zmq.proxy_steerable, one turn at a time, on a thread the broker starts;
    the main thread ends a turn with TERMINATE on a control socket."""

    def __init__(self, frontend, backend):
        self.sockets, self.thread = (frontend, backend), None
        self.control = frontend.context.socket(zmq.PAIR)
        self.control.bind(f"inproc://proxy-control-{id(self)}")
        self.steer = frontend.context.socket(zmq.PAIR)  # the proxy's end
        self.steer.connect(f"inproc://proxy-control-{id(self)}")

    def start(self):
        self.thread = threading.Thread(target=self.turn, daemon=True)
        self.thread.start()

    def turn(self):
        try:
            zmq.proxy_steerable(*self.sockets, None, self.steer)
        except zmq.ZMQError:  # a send gave up (SNDTIMEO) with a message half moved:
            for sock in self.sockets:  # drop the rest, so none arrives without its head
                while sock.getsockopt(zmq.RCVMORE):
                    sock.recv(zmq.NOBLOCK)

    def stop(self):
        if self.thread:
            self.control.send(b"TERMINATE")
            while self.thread.is_alive():
                self.thread.join(POLL_MS / 1000)  # short waits: a signal is seen
            for sock in (self.control, self.steer):  # its answer, or a TERMINATE unread
                while sock.poll(0):
                    sock.recv()
            self.thread = None

    def close(self):
        self.stop()
        self.control.close()
        self.steer.close()


class ServerCount:
    """How many ZeroMQ 4 servers are connected, from the back end's monitor. Its
    HANDSHAKE_SUCCEEDED does not say which connection succeeded, and some junk
    ends the way a server does; where the events cannot tell, the count says so."""

    FAILED = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    FAILED |= zmq.EVENT_HANDSHAKE_FAILED_AUTH
    EVENTS = FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_ACCEPTED
    EVENTS |= zmq.EVENT_DISCONNECTED | zmq.EVENT_ACCEPT_FAILED

    def __init__(self):
        self.servers, self.unknown = set(), set()  # connections (file numbers)
        self.pending = 0  # handshakes that succeeded on one of the unknown connections
        self.doubt = 0  # up to this many more may be connected than counted
        self.failed = False  # was the last event a failed handshake?
        self.unseen_since, self.unseen_said, self.next_limit_line = None, False, 0.0

    @property
    def count(self):
        return len(self.servers) + self.pending

    def follow(self, event):
        kind, value = event["event"], event["value"]
        if kind == zmq.EVENT_ACCEPT_FAILED:
            return self.at_file_limit(value)
        failed, self.failed = self.failed, bool(kind & self.FAILED)
        count, doubt = self.count, self.doubt
        if kind == zmq.EVENT_ACCEPTED:
            self.unknown.add(value)
        elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.pending += 1
        elif kind == zmq.EVENT_DISCONNECTED and value in self.servers:
            self.servers.discard(value)
        elif kind == zmq.EVENT_DISCONNECTED and value in self.unknown:
            self.unknown.discard(value)
            if (self.pending and not failed) or self.pending > len(self.unknown):
                self.pending -= 1  # a server left, or junk that ended the same way
                self.doubt += 1
        if self.pending and self.pending == len(self.unknown):  # all of them succeeded
            self.servers |= self.unknown
            self.unknown.clear()
            self.pending = 0
        self.doubt = min(self.doubt, len(self.unknown) - self.pending)  # what still could be
        if self.count > count:
            self.changed("server connected")
        elif self.count < count and self.doubt <= doubt:
            self.changed("server left")
        elif (self.count, self.doubt) != (count, doubt):
            self.changed("connection closed")

    def changed(self, what):
        shown = f"{self.count} to {self.count + self.doubt}" if self.doubt else self.count
        say(f"python (pid={PID}): {what}, {shown} connected now")
        if self.count + self.doubt == 0:
            self.unseen_said = False
            say(f"python (pid={PID}): no server connected, requests wait")

    def check_unseen(self, writable):
        # ZeroMQ 2 and 3 servers (ZMTP 1.0, 2.0) take requests with no event at all;
        # a ZeroMQ 4 one may take them a moment before its event, so wait a second.
        if self.count + self.doubt or not writable:
            self.unseen_since = None
        elif self.unseen_since is None:
            self.unseen_since = time.monotonic()
        elif not self.unseen_said and time.monotonic() > self.unseen_since + 1:
            self.unseen_said = True
            say(
                f"python (pid={PID}): requests go to a peer the count cannot see (ZeroMQ"
                " older than 4, or not ZeroMQ at all: a web browser on the servers' port?)"
            )

    def at_file_limit(self, error):
        if time.monotonic() > self.next_limit_line:  # libzmq retries at once: no flood
            self.next_limit_line = time.monotonic() + REFUSING_EVERY
            say(
                f"python (pid={PID}): at the open-file limit ({zmq.strerror(error)}): new"
                " connections wait; raise the open-file limit (ulimit -n) or start another broker"
            )


def new_socket(ctx, kind, max_size):
    sock = ctx.socket(kind)
    # A frame over max_size makes libzmq drop that peer's connection; the others are
    # unaffected. The limit is per frame: a request of many big frames is taken whole.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size)
    # libzmq's default backlog is 100: a class reconnecting at once after a
    # restart would overflow it, and the overflow waits seconds to retry.
    sock.setsockopt(zmq.BACKLOG, BACKLOG)
    # A burst of requests can fill every server's queue midway (room comes back 500
    # at a time): the send gives up after POLL_MS, the turn ends, the client resends.
    sock.setsockopt(zmq.SNDTIMEO, POLL_MS)
    return sock


def raise_open_file_limit():
    """Every connection is an open file, and many systems allow only 1024 (256
    on macOS) unless asked. Raise that soft limit as far as the hard one; return
    how many connections fit, or None where there is no such limit."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (hard, max(soft, min(hard, 10240))):  # macOS refuses its "unlimited"
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted - SPARE_FILES
    return soft - SPARE_FILES


def bind(sock, endpoint):
    check_endpoint(sock, endpoint, "bind")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        refuse(endpoint, "bind", zmq.strerror(err.errno))
    return sock.LAST_ENDPOINT.decode()


def check_endpoint(sock, endpoint, doing):
    """Refuse, in one line, an endpoint that cannot work; return where it leads.
    libzmq checks the rest, but resolves a host name only later, and quietly."""
    if not endpoint.isprintable():  # a control character, or bytes that are not UTF-8
        refuse(ascii(endpoint), doing, "not printable")
    scheme, _, address = endpoint.partition("://")
    host, _, port = address.rpartition(":")
    host = host.rpartition(";")[2].strip("[]")  # tcp://SOURCE;HOST:PORT, tcp://[::1]:PORT
    if scheme == "inproc":
        refuse(endpoint, doing, "inproc:// reaches only sockets in the same process")
    if scheme != "tcp":
        return endpoint
    if ":" in host:  # an IPv6 address, which libzmq takes only with IPV6 on
        sock.setsockopt(zmq.IPV6, 1)
    if port == "*" and doing == "bind":  # any free port
        return endpoint
    if not (port.isascii() and port.isdigit()):  # libzmq would take "6x" for 6, -1 for 65535
        refuse(endpoint, doing, "no port number at its end (tcp://HOST:PORT)")
    if int(port) > 65535:  # libzmq would quietly wrap it: 99999 becomes 34463
        refuse(endpoint, doing, "port is over 65535")
    if doing == "bind" or host == "*":  # a bind's host may name an interface
        return endpoint
    if int(port) == 0:
        refuse(endpoint, doing, "port 0 is for binding (any free port), not connecting")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as libzmq resolves it
    try:
        found = socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)
    except socket.gaierror as err:
        refuse(endpoint, doing, f"host {host!r} does not resolve ({err.strerror})")
    except UnicodeError:  # a part of it empty or over 63 letters: "a..b"
        refuse(endpoint, doing, f"{host!r} is not a host name")
    return found[0][4][:2]


def refuse(endpoint, doing, why):
    # A missing "tcp://" is the usual slip: say what was meant.
    hint = "" if "://" in endpoint else f" (did you mean tcp://{endpoint}?)"
    sys.exit(f"{NAME}: cannot {doing} {endpoint}: {why}{hint}")


def stop_requests():
    """Turn Ctrl-C and SIGTERM into a note that the loops read, so a script stops
    between two steps, never inside one (a request in hand is answered). Setting
    it explicitly also undoes a shell's ignoring SIGINT for a command run with "&"."""
    requested = []

    def note(signum, frame):
        requested.append(signum)
        # Stopping now. Python puts the default handlers back as it exits, where
        # one more Ctrl-C would kill the script: ignore any more from here on.
        for later in (signal.SIGINT, signal.SIGTERM):
            signal.signal(later, signal.SIG_IGN)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, note)
    return requested


def main():
    parser = argparse.ArgumentParser(description="ROUTER/DEALER request-reply broker.")
    arg = parser.add_argument
    arg("--frontend", default=FRONTEND_ENDPOINT, metavar="EP",
        help="where clients connect, as tcp://HOST:PORT (default %(default)s)")  # fmt: skip
    arg("--backend", default=BACKEND_ENDPOINT, metavar="EP",
        help="where servers connect, as tcp://HOST:PORT (default %(default)s)")  # fmt: skip
    arg("--max-size", type=int, default=MAX_SIZE, metavar="BYTES", help="drop a peer that "
        "sends a bigger frame (default %(default)s)")  # fmt: skip
    arg("--quiet", action="store_true", help="accepted for symmetry: no per-request lines")
    args = parser.parse_args()
    if args.max_size < MIN_SIZE:
        parser.error(f"--max-size must be at least {MIN_SIZE} (a ZeroMQ handshake sends 296)")
    if args.max_size >= 2**63:  # libzmq keeps it in 64 bits
        parser.error("--max-size must be under 2**63")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    room = raise_open_file_limit()
    ctx = zmq.Context()  # one I/O thread: the monitor's events come in libzmq's order
    try:
        frontend = new_socket(ctx, zmq.ROUTER, args.max_size)
        # Clients name themselves; a client that reconnects before its old
        # connection was noticed dead takes its name over instead of being refused.
        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)
        backend = new_socket(ctx, zmq.DEALER, args.max_size)
        # Heartbeats on the back end: a frozen (Ctrl-Z) or cut-off server keeps its
        # TCP connection open but answers nothing; libzmq drops it after 3 s without
        # an answer to a ping. Not in front: the clients ping, and with heartbeats
        # there any client could abort the broker (libzmq 4.3.5 asserts when one
        # times out on a connection that stopped reading, 1000 requests queued, and
        # then hung up).
        backend.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
        backend.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
        # Monitors before binding, or a server that connects at once is missed.
        front_monitor = frontend.get_monitor_socket(zmq.EVENT_ACCEPT_FAILED)
        back_monitor = backend.get_monitor_socket(ServerCount.EVENTS)
        front, back = bind(frontend, args.frontend), bind(backend, args.backend)
        limit = f" (room for {room} connections)" if room else ""
        say(f"python (pid={PID}): broker up, clients on {front}, servers on {back}{limit}")
        broker(frontend, backend, (front_monitor, back_monitor), stop)
        say(f"python (pid={PID}): stopped")
    finally:
        # LINGER 0 on every socket: drop messages in flight, or a server that reads
        # nothing would keep the broker from exiting. The clients resend them.
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
