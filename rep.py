#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""rep.py: the architect. A REP server that answers every request with its SHA-1.

A REP socket is ZeroMQ's simplest server: it receives one request, sends one
reply, and only then takes the next. It binds, so it owns the address; any
number of REQ clients (c.py, one per player) connect to it. REP queues their
requests fairly and routes each reply back to the client that asked, so the
code below never needs to know who is talking.

Run it in one terminal, then c.py in as many others as you like:

    python rep.py                          # serves tcp://127.0.0.1:5556
    python rep.py --bind 'tcp://*:5556'    # also reachable from other machines
    python rep.py --work 2                 # two seconds of "work" per request

Try:
  * several c.py at once: each checks every digest against what it sent;
  * Ctrl-C this server while clients run: it answers the request in hand and
    exits; the clients say they are waiting, and carry on when you restart it;
  * start it with --work 2 and kill -9 it while it works: the client whose
    request died with it resends that request to the server you restart.
"""

import argparse
import contextlib
import hashlib
import os
import signal
import socket
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

try:
    import resource  # the open-file limit; not on Windows, which has none to raise
except ImportError:
    resource = None

BIND_ENDPOINT = "tcp://127.0.0.1:5556"
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
MIN_SIZE = 512  # bytes; ZeroMQ's own handshake sends frames of up to 296
BACKLOG = 4096  # connections the OS holds while waiting to be accepted (a class at once)
SPARE_FILES = 32  # open files the server itself needs besides its connections
REFUSING_EVERY = 10  # seconds: libzmq retries a failed accept() at once; a line, not a flood
POLL_MS = 100  # how often the loop looks up from the socket to see if it must stop
SHOWN_CHARS = 200  # longer requests are cut short on screen, not in the digest
LINGER_MS = 500  # on exit, how long the last reply may take to leave
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name


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


def printable(data):
    """The bytes as one line of text: what is not UTF-8 or not printable is escaped."""
    text = data.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


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


def bind_socket(ctx, endpoint, max_size):
    sock = ctx.socket(zmq.REP)
    # LINGER is how long closing may wait to deliver what is still queued. The
    # default is forever: with a client that sends but stops reading, this server
    # took 4 s to exit (until heartbeats dropped it), not the half second promised.
    # 0 may drop a reply still queued at exit. Half a second lets it leave.
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    # No heartbeats from this end: the clients ping, and libzmq answers for us.
    # With them, any client could abort this server: libzmq 4.3.5 asserts when a
    # heartbeat times out on a connection that had stopped reading (its queue
    # full: 1000 requests sent unread) and then hung up (stream_engine_base.cpp).
    # A frame over max_size makes libzmq drop that peer's connection; the others are
    # unaffected. The limit is per frame: a request of 400 frames of 1 MB is taken
    # whole (it took this server from 25 MB to 788 MB resident).
    sock.setsockopt(zmq.MAXMSGSIZE, max_size)
    # Clients name themselves (ROUTING_ID). One that reconnects before this
    # server noticed its old connection die (this server was frozen, or the
    # network was down) must take its name over: without HANDOVER, REP ignores
    # the new connection for good, and every request dealt to it is lost.
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    # libzmq's default backlog is 100: a class connecting at once would overflow
    # it, and the overflow waits seconds to retry.
    sock.setsockopt(zmq.BACKLOG, BACKLOG)
    # The monitor reports an accept() that failed for lack of open files.
    monitor = sock.get_monitor_socket(zmq.EVENT_ACCEPT_FAILED)
    check_endpoint(sock, endpoint, "bind")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        refuse(endpoint, "bind", zmq.strerror(err.errno))
    return sock, monitor


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


def answer_one(sock, work, quiet):
    # A request may have several frames; the digest covers all of their bytes.
    # REP has already stripped the envelope (who asked) and will put it back.
    data = b"".join(sock.recv_multipart())
    if not quiet:
        say(f"python: received '{printable(data)}' from client.")
    if work:
        time.sleep(work)
    digest = hashlib.sha1(data).hexdigest()
    if not quiet:
        say(f"python (pid={PID}): sending back sha1 of the received data: {digest}")
    sock.send_string(digest)


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


def serve(sock, monitor, stop, work, quiet):
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    next_refusing_line = 0.0  # no open-file-limit line before this time.monotonic()
    while not stop:
        ready = dict(poller.poll(POLL_MS))
        if sock in ready:
            answer_one(sock, work, quiet)
        if monitor in ready:
            error = recv_monitor_message(monitor)["value"]  # an accept() that failed
            if time.monotonic() > next_refusing_line:
                next_refusing_line = time.monotonic() + REFUSING_EVERY
                say(
                    f"python (pid={PID}): at the open-file limit ({zmq.strerror(error)}):"
                    " new connections wait; raise the open-file limit (ulimit -n)"
                )


def main():
    parser = argparse.ArgumentParser(description="SHA-1 REP server (the architect).")
    arg = parser.add_argument
    arg("--bind", default=BIND_ENDPOINT, metavar="EP", help="where to serve, as"
        " tcp://HOST:PORT; tcp://*:5556 serves every network (default %(default)s)")  # fmt: skip
    arg("--work", type=float, default=0.0, metavar="SECONDS",
        help="pretend to work this long on each request (default 0)")  # fmt: skip
    arg("--max-size", type=int, default=MAX_SIZE, metavar="BYTES",
        help="drop a peer that sends a bigger frame (default %(default)s)")  # fmt: skip
    arg("--quiet", action="store_true", help="no per-request lines")
    args = parser.parse_args()
    if not 0 <= args.work <= 86400:  # "not <=" also refuses nan
        parser.error("--work must be 0 to 86400 seconds")
    if args.max_size < MIN_SIZE:
        parser.error(f"--max-size must be at least {MIN_SIZE} (a ZeroMQ handshake sends 296)")
    if args.max_size >= 2**63:  # libzmq keeps it in 64 bits
        parser.error("--max-size must be under 2**63")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    room = raise_open_file_limit()
    ctx = zmq.Context()
    try:
        sock, monitor = bind_socket(ctx, args.bind, args.max_size)
        limit = f" (room for {room} connections)" if room else ""
        say(f"python (pid={PID}): serving sha1 on {sock.LAST_ENDPOINT.decode()}{limit}")
        serve(sock, monitor, stop, args.work, args.quiet)
        say(f"python (pid={PID}): stopped")
    finally:
        ctx.destroy()


if __name__ == "__main__":
    main()
