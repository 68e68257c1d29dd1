#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""rep.py: the architect. A REP server that answers every request with its SHA-1.

A REP socket is ZeroMQ's simplest server: it receives one request, sends one
reply, then takes the next. It binds, so it owns the address, and any number of
REQ clients (c.py) connect to it; REP routes each reply to the one that asked.

The pattern, as the zguide writes it (a test runs this very code):

    context = zmq.Context()
    socket = context.socket(zmq.REP)
    socket.bind("tcp://127.0.0.1:5556")
    while True:
        request = socket.recv()
        socket.send(hashlib.sha1(request).hexdigest().encode())

Run it in one terminal, then c.py in as many others as you like:

    python rep.py                          # serves tcp://127.0.0.1:5556

Try: several c.py at once; Ctrl-C it while they run (it answers the request in hand;
they wait, and carry on when it is back); kill -9 it during --work 2: its client resends.
"""

import argparse
import hashlib
import os
import signal
import socket
import stat
import sys
import time
import unicodedata

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

try:
    import resource  # the open-file limit; not on Windows, which has none to raise
except ImportError:
    resource = None

BIND_ENDPOINT = "tcp://127.0.0.1:5556"
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
MIN_SIZE = 512  # bytes; ZeroMQ's own handshake sends frames of up to 296 (--secret: 544)
SEALING = 33  # bytes --secret adds to each frame: allowed for, --max-size counts data
BACKLOG = 4096  # connections the OS holds while waiting to be accepted (a class at once)
SPARE_FILES = 32  # open files the server itself needs besides its connections
REFUSING_EVERY = 10  # seconds: libzmq retries a failed accept() at once; a line, not a flood
POLL_MS = 100  # how often the loop looks up from the socket to see if it must stop
SHOWN_CHARS = 200  # longer requests are cut short on screen, not in the reply
LINGER_MS = 500  # on exit, how long the last reply may take to leave
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name
SALT = b"zmq-reqrep-tutorial --secret"  # every script's: one phrase, one key pair


def answer(request):
    """The tutorial's work, and all an assignment changes: the reply to a request."""
    return hashlib.sha1(request).hexdigest().encode()


# The lines that name that work: change them with it.
RECEIVED = "python: received '{request}' from client."
SENDING = "python (pid={pid}): sending back sha1 of the received data: {reply}"
SERVING = "python (pid={pid}): serving sha1 on {where}"


def serve(sock, monitor, stop, work, quiet):
    """The pattern: receive a request, answer it, send the reply; until Ctrl-C."""
    limit_said = 0.0  # when the last open-file-limit line was printed
    while not stop:
        try:
            frame = sock.recv(copy=False)  # a Frame, not bytes: it has .more; REP keeps who asked
        except zmq.Again:  # none for POLL_MS (RCVTIMEO): look up, to see Ctrl-C
            until = time.monotonic() + POLL_MS / 1000  # failed accept()s: read POLL_MS at most,
            while monitor.poll(0) and time.monotonic() < until:  # at the file limit they never stop
                limit_said = at_file_limit(recv_monitor_message(monitor)["value"], limit_said)
            continue
        request = frame.bytes  # a request may be several frames; send() fails until all are read
        if frame.more:  # rare, so read the rest only then: recv_multipart() asks, slowly, each time
            request += b"".join(sock.recv_multipart())
        if not quiet:
            say(RECEIVED.format(request=printable(request)))
        if work:
            time.sleep(work)
        reply = answer(request)
        if not quiet:
            say(SENDING.format(pid=PID, reply=printable(reply)))
        sock.send(reply)


def bind_socket(ctx, endpoint, max_size, secret):
    sock = ctx.socket(zmq.REP)
    # LINGER: how long closing may wait to deliver; forever by default, 0 drops a reply.
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.RCVTIMEO, POLL_MS)  # a wait for a request ends after POLL_MS
    # No heartbeats: clients ping, libzmq answers; its own pings could abort it (4.3.5 asserts).
    # A frame over max_size drops that peer, and only it; the limit is per frame.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size + (SEALING if secret else 0))
    # HANDOVER: a client back under its name before its old link died is served, not ignored.
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.setsockopt(zmq.BACKLOG, BACKLOG)  # libzmq's 100 overflows when a class connects
    if secret:  # --secret: CURVE, as a server; only who knows the phrase gets through
        sock.curve_server = True
        sock.curve_secretkey = curve_keys(secret)[1]
    monitor = sock.get_monitor_socket(zmq.EVENT_ACCEPT_FAILED)
    return sock, monitor, bind(sock, endpoint)


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


def printable(data):
    """The bytes as one line of text: what is not UTF-8 or not printable is escaped."""
    text = data.decode("utf-8", "backslashreplace")
    if not text.isprintable():  # one C call for the usual case; this walk is slow
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


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
    parser = argparse.ArgumentParser(description="SHA-1 REP server (the architect).")
    arg = parser.add_argument
    arg("--bind", default=BIND_ENDPOINT, metavar="EP", help="where to serve, as tcp://HOST:PORT;"
        " tcp://*:5556 serves every network (default %(default)s)")  # fmt: skip
    arg("--work", type=float, default=0.0, help="seconds of pretend work per request")
    arg("--max-size", type=int, default=MAX_SIZE, help="drop a peer sending a bigger frame")
    arg("--quiet", action="store_true", help="no per-request lines")
    arg("--secret", default=os.environ.get("REQREP_SECRET"), metavar="PHRASE",
        help="encrypt, and work only with peers given the same phrase"
        " (default: $REQREP_SECRET; unlike arguments, no other user can read it)")  # fmt: skip
    args = parser.parse_args()
    if not 0 <= args.work <= 86400:  # "not <=" also refuses nan
        parser.error("--work must be 0 to 86400 seconds")
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
    ctx = zmq.Context()
    try:
        sock, monitor, where = bind_socket(ctx, args.bind, args.max_size, args.secret)
        limit = f" (room for {room} connections)" if room else ""
        say(SERVING.format(pid=PID, where=where) + limit)
        serve(sock, monitor, stop, args.work, args.quiet)
        say(f"python (pid={PID}): stopped")
    finally:
        ctx.destroy()


if __name__ == "__main__":
    main()
