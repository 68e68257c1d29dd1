#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""msgqueue.py: the broker. ROUTER for clients in front, DEALER for servers behind.

Clients (mreq.py) connect to its front and servers (mrep.py), which come and go, to
its back; neither knows the other. The ROUTER tags each request with the client it
came from, to route the reply back by that tag; the DEALER deals requests round-robin.

The pattern, as the zguide writes it (a test runs this very code):

    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    frontend.bind("tcp://127.0.0.1:5559")
    backend = context.socket(zmq.DEALER)
    backend.bind("tcp://127.0.0.1:5560")
    zmq.proxy(frontend, backend)  # both ways, inside libzmq: no Python per message

Run it first, then servers (mrep.py) and clients (mreq.py) in other terminals:

    python msgqueue.py                 # clients on 5559, servers on 5560

Try: start and stop servers (this terminal shows each come and go); Ctrl-C it and
start it again (everyone reconnects by themselves); a second broker on other ports,
with everyone given both (--connect twice): kill either, and work goes on.
"""

import argparse
import hashlib
import os
import signal
import socket
import stat
import sys
import threading
import time
import unicodedata

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

try:
    import resource  # the open-file limit; not on Windows, which has none to raise
except ImportError:
    resource = None

FRONTEND_ENDPOINT = "tcp://127.0.0.1:5559"  # clients (mreq.py) connect here
BACKEND_ENDPOINT = "tcp://127.0.0.1:5560"  # servers (mrep.py) connect here
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
MIN_SIZE = 512  # bytes; ZeroMQ's own handshake sends frames of up to 296 (--secret: 544)
SEALING = 33  # bytes --secret adds to each frame: allowed for, --max-size counts data
BACKLOG = 4096  # connections the OS holds while waiting to be accepted (a class at once)
SPARE_FILES = 32  # open files the broker itself needs besides its connections
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each server every second; drop it after 3 s silent
POLL_MS = 100  # the proxy runs in turns this long; the main loop looks up between them
REFUSING_EVERY = 10  # seconds: libzmq retries a failed accept() at once; a line, not a flood
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name
SALT = b"zmq-reqrep-tutorial --secret"  # every script's: one phrase, one key pair


def broker(frontend, backend, monitors, stop):
    """The pattern: zmq.proxy(frontend, backend), in turns, each begun only while a
    server can take a request: libzmq's proxy spins at 100% CPU while requests wait
    and none can (libzmq issue 4071), and nothing tells when it does."""
    control = frontend.context.socket(zmq.PAIR)  # ours: a TERMINATE on it ends a turn
    control.bind("inproc://proxy-control")
    steer = frontend.context.socket(zmq.PAIR)  # the proxy's end
    steer.connect("inproc://proxy-control")
    servers, thread = ServerCount(), None
    try:
        while not stop:
            ours = [] if thread else [backend]  # between turns only: then it is ours
            zmq.select(monitors + ours, ours, [], POLL_MS / 1000)  # or until something happens
            until = time.monotonic() + POLL_MS / 1000  # failed accept()s can come faster
            for monitor in monitors:  # than read: read for POLL_MS at most
                while monitor.poll(0) and time.monotonic() < until:
                    servers.follow(recv_monitor_message(monitor))
            end_turn(thread, control, steer)  # a turn lasts POLL_MS at most: the loop looks up
            thread = None
            writable = backend.poll(0, zmq.POLLOUT)  # a server is connected and has room
            servers.check_unseen(writable)
            if writable and not stop:
                thread = threading.Thread(target=turn, args=(frontend, backend, steer), daemon=True)
                thread.start()
            else:  # replies may still come, such as a last server's, sent as it left
                while backend.poll(0):
                    frontend.send_multipart(backend.recv_multipart())
    finally:
        end_turn(thread, control, steer)
        control.close()
        steer.close()


def turn(frontend, backend, steer):
    """One turn of zmq.proxy_steerable, on a thread of its own: the main thread stays
    free for signals, and ends the turn with TERMINATE (end_turn)."""
    try:
        zmq.proxy_steerable(frontend, backend, None, steer)
    except zmq.ZMQError:  # a send gave up (SNDTIMEO) with a message half moved:
        for sock in (frontend, backend):  # drop the rest, so none arrives without its head
            while sock.getsockopt(zmq.RCVMORE):
                sock.recv(zmq.NOBLOCK)


def end_turn(thread, control, steer):
    if thread:
        control.send(b"TERMINATE")
        while thread.is_alive():
            thread.join(POLL_MS / 1000)  # short waits: a signal is seen
        for sock in (control, steer):  # its answer, or a TERMINATE unread
            while sock.poll(0):
                sock.recv()


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
        self.low = self.high = 0  # how many of the unknown are servers: at least, at most
        self.failed = False  # was the last event a failed handshake?
        self.unseen_since, self.unseen_said, self.limit_said = None, False, 0.0

    def follow(self, event):
        kind, value = event["event"], event["value"]
        if kind == zmq.EVENT_ACCEPT_FAILED:
            self.limit_said = at_file_limit(value, self.limit_said)
            return
        failed, self.failed = self.failed, bool(kind & self.FAILED)
        was_low, was_high = self.shown()
        if kind == zmq.EVENT_ACCEPTED:
            self.unknown.add(value)
        elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:  # one of the unknown: it does not say which
            self.low, self.high = self.low + 1, self.high + 1
        elif kind == zmq.EVENT_DISCONNECTED and value in self.servers:
            self.servers.discard(value)
        elif kind == zmq.EVENT_DISCONNECTED and value in self.unknown:
            self.unknown.discard(value)
            if not failed:  # a server left, or junk that ended the same way
                self.low = max(self.low - 1, 0)
        left = len(self.unknown)  # no more of them can be servers than there are
        self.low, self.high = min(self.low, left), min(self.high, left)
        if self.low == left:  # every one of them is a server
            self.servers |= self.unknown
            self.unknown.clear()
            self.low = self.high = 0
        low, high = self.shown()
        if low > was_low:
            self.changed("server connected", low, high)
        elif low < was_low and high < was_high:
            self.changed("server left", low, high)
        elif (low, high) != (was_low, was_high):
            self.changed("connection closed", low, high)

    def shown(self):
        return len(self.servers) + self.low, len(self.servers) + self.high

    def changed(self, what, low, high):
        shown = f"{low} to {high}" if high > low else low
        say(f"python (pid={PID}): {what}, {shown} connected now")
        if high == 0:
            self.unseen_said = False
            say(f"python (pid={PID}): no server connected, requests wait")

    def check_unseen(self, writable):
        # ZeroMQ 2 and 3 servers take requests with no event; a 4 one, a moment before it.
        if self.shown()[1] or not writable:
            self.unseen_since = None
        elif self.unseen_since is None:
            self.unseen_since = time.monotonic()
        elif not self.unseen_said and time.monotonic() > self.unseen_since + 1:
            self.unseen_said = True
            say(f"python (pid={PID}): requests go to a peer the count cannot see (ZeroMQ older"
                " than 4, or not ZeroMQ at all: a web browser on the servers' port?)")  # fmt: skip


def new_socket(ctx, kind, max_size, secret_key):
    sock = ctx.socket(kind)
    # A bigger frame drops that peer, and only it; --secret makes each SEALING bytes longer.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size + (SEALING if secret_key else 0))
    sock.setsockopt(zmq.BACKLOG, BACKLOG)  # libzmq's 100 overflows when a class reconnects at once
    sock.setsockopt(zmq.SNDTIMEO, POLL_MS)  # servers' queues full: the send gives up, the turn ends
    if secret_key:  # --secret: CURVE, as a server; only who knows the phrase gets through
        sock.curve_server = True
        sock.curve_secretkey = secret_key
    return sock


def bind(sock, endpoint):
    """Bind, or refuse in one line an endpoint that cannot work; return where it is."""
    if not endpoint.isprintable():  # a control character, or bytes that are not UTF-8
        refuse(ascii(endpoint), "bind", "not printable")
    scheme, _, address = endpoint.partition("://")
    host, _, port = address.rpartition(":")
    if scheme == "inproc":
        refuse(endpoint, "bind", "inproc:// reaches only sockets in the same process")
    if scheme == "ipc":
        check_ipc_path(endpoint, address)
    if scheme == "tcp" and ":" in host:  # an IPv6 address, which libzmq takes only with IPV6
        sock.setsockopt(zmq.IPV6, 1)
    if scheme == "tcp" and port != "*":  # "*": any free port
        if not (port.isascii() and port.isdigit()):  # libzmq would take "6x" for 6, -1 for 65535
            refuse(endpoint, "bind", "no port number at its end (tcp://HOST:PORT)")
        if int(port) > 65535:  # libzmq would quietly wrap it: 99999 becomes 34463
            refuse(endpoint, "bind", "port is over 65535")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        refuse(endpoint, "bind", zmq.strerror(err.errno))
    return sock.LAST_ENDPOINT.decode()


def refuse(endpoint, doing, why):
    hint = "" if "://" in endpoint else f" (did you mean tcp://{endpoint}?)"  # the usual slip
    sys.exit(f"{NAME}: cannot {doing} {endpoint}: {why}{hint}")


def check_ipc_path(endpoint, path):
    """Refuse a path that is taken: libzmq deletes whatever is there before it binds,
    even a live server's socket, which would serve on, unreached and never told."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # nothing there (or not ours to see: the bind will say)
        return
    if not stat.S_ISSOCK(mode):
        refuse(endpoint, "bind", "a file that is not a socket is there")
    if not hasattr(socket, "AF_UNIX"):  # Python on Windows has none: it cannot look
        return
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except ConnectionRefusedError:  # a socket file left by an earlier run: free
            return
        except OSError as err:  # no permission, a full queue...: better not take it
            why = err.strerror or err  # "AF_UNIX path too long" has no strerror
            refuse(endpoint, "bind", f"cannot tell whether a server uses it ({why})")
    refuse(endpoint, "bind", "in use by a server")


def curve_keys(phrase):
    """--secret: the system's CURVE key pair, from the phrase alone (no key files). Servers
    need the secret key, clients the public one, never sent: only who knows the phrase gets
    through. Slow on purpose (0.2 s): each guess at a captured handshake costs as much."""
    # As typed on any system (an accent one character or two), even bytes that are not UTF-8.
    data = unicodedata.normalize("NFC", phrase).encode("utf-8", "surrogateescape")
    raw = hashlib.pbkdf2_hmac("sha256", data, SALT, 400_000, dklen=32)
    secret = z85.encode(raw)  # any 32 bytes make a secret key (libsodium clamps them)
    return zmq.curve_public(secret), secret


def at_file_limit(error, said):
    """A line saying connections wait, once per REFUSING_EVERY s; returns when said."""
    if time.monotonic() > said + REFUSING_EVERY:  # libzmq retries accept() at once
        said, why = time.monotonic(), zmq.strerror(error)
        say(f"python (pid={PID}): at the open-file limit ({why}): new connections wait;"
            " raise the open-file limit (ulimit -n)")  # fmt: skip
    return said


def raise_open_file_limit():
    """Every connection is an open file, and many systems allow only 1024 (macOS 256):
    raise the soft limit to the hard one; return how many connections fit, or None."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (hard, max(soft, min(hard, 10240))):  # macOS refuses its "unlimited"
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted - SPARE_FILES
        except (ValueError, OSError):
            pass
    return soft - SPARE_FILES


def say(line):
    try:
        print(line, flush=True)  # flush: each line shows at once, even through a pipe
    except OSError:  # nobody reads any more (a closed pipe or terminal, a full disk):
        devnull = os.open(os.devnull, os.O_WRONLY)  # later lines go nowhere, and the
        os.dup2(devnull, sys.stdout.fileno())  # request in hand is answered all the same
        os.close(devnull)


def stop_requests():
    """Ctrl-C and SIGTERM become a note the loop reads: it stops between two steps."""
    requested = []

    def note(signum, frame):
        requested.append(signum)
        # Stopping now. Python puts the default handlers back as it exits, where
        # one more Ctrl-C would kill the script: ignore any more from here on.
        for later in (signal.SIGINT, signal.SIGTERM):
            signal.signal(later, signal.SIG_IGN)

    for signum in (signal.SIGINT, signal.SIGTERM):  # also undoes a shell's SIG_IGN ("cmd &")
        signal.signal(signum, note)
    return requested


def main():
    parser = argparse.ArgumentParser(description="ROUTER/DEALER request-reply broker.")
    arg = parser.add_argument
    where = "connect, as tcp://HOST:PORT (default %(default)s)"
    arg("--frontend", default=FRONTEND_ENDPOINT, metavar="EP", help=f"where clients {where}")
    arg("--backend", default=BACKEND_ENDPOINT, metavar="EP", help=f"where servers {where}")
    arg("--max-size", type=int, default=MAX_SIZE, metavar="BYTES", help="drop a peer that "
        "sends a bigger frame (default %(default)s)")  # fmt: skip
    arg("--quiet", action="store_true", help="accepted for symmetry: no per-request lines")
    arg("--secret", default=os.environ.get("REQREP_SECRET"), metavar="PHRASE",
        help="encrypt, and work only with peers given the same phrase"
        " (default: $REQREP_SECRET; unlike arguments, no other user can read it)")  # fmt: skip
    args = parser.parse_args()
    if not MIN_SIZE <= args.max_size < 2**63 - SEALING:  # libzmq keeps it in 64 bits
        parser.error(f"--max-size must be {MIN_SIZE} (a handshake sends 296) to 2**63 - 34")
    if args.secret == "":  # --secret "", as from a shell variable never set
        parser.error("--secret needs a phrase (it, or REQREP_SECRET, is empty)")
    if args.secret and not zmq.has("curve"):
        parser.error("--secret needs a libzmq built with CURVE (pip's pyzmq has it)")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    room = raise_open_file_limit()
    secret_key = curve_keys(args.secret)[1] if args.secret else None
    ctx = zmq.Context()  # one I/O thread: the monitor's events come in libzmq's order
    try:
        frontend = new_socket(ctx, zmq.ROUTER, args.max_size, secret_key)
        # A client back before its old connection was seen dead takes its name over, not ignored.
        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)
        backend = new_socket(ctx, zmq.DEALER, args.max_size, secret_key)
        # Pings drop a server that keeps its connection but answers nothing (Ctrl-Z, cut off).
        # None in front: libzmq 4.3.5 aborts if one times out on a client it stopped reading.
        backend.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
        backend.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
        # Monitors before binding, or a server that connects at once is missed.
        front_monitor = frontend.get_monitor_socket(zmq.EVENT_ACCEPT_FAILED)
        back_monitor = backend.get_monitor_socket(ServerCount.EVENTS)
        front, back = bind(frontend, args.frontend), bind(backend, args.backend)
        limit = f" (room for {room} connections)" if room else ""
        say(f"python (pid={PID}): broker up, clients on {front}, servers on {back}{limit}")
        broker(frontend, backend, [front_monitor, back_monitor], stop)
        say(f"python (pid={PID}): stopped")
    finally:
        ctx.destroy(linger=0)  # LINGER 0: a server that reads nothing cannot hold the exit


if __name__ == "__main__":
    main()
