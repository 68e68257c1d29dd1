#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""mrep.py: one of many servers. A REP worker behind the broker that echoes requests.

Same REP socket as rep.py, one difference: it connects to the broker's back
(msgqueue.py, port 5560) instead of binding a port of its own. So you can
start as many as you like, anywhere, in any order; the broker hands each one
requests in turn, and clients never learn which server answered.

Because it connects, ZeroMQ reconnects it by itself when the broker restarts.
A socket monitor reports those comings and goings as lines of output.

Run msgqueue.py first, then this in several terminals, then mreq.py:

    python mrep.py
    python mrep.py --work 0.5     # half a second of "work" per request

Try:
  * Ctrl-C one server: it answers the request in hand and exits; clients do
    not notice, except one whose request was queued for it, which resends;
  * kill -9 one server while it works (--work 2): its client resends after
    its timeout and another server answers;
  * Ctrl-Z one server (frozen, not dead): within 3 to 4 s the broker's
    heartbeats drop it and the others take its share; type fg and it rejoins;
  * kill them all: clients pause; start one and it takes the waiting requests;
  * start more: watch the requests spread over all of them.
"""

import argparse
import os
import signal
import socket
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

BROKER_ENDPOINT = "tcp://127.0.0.1:5560"  # the broker's back, for servers
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
MIN_SIZE = 512  # bytes; ZeroMQ's own handshake sends frames of up to 296
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each peer every second; drop it after 3 s silent
POLL_MS = 100  # how often the loop looks up from the socket to see if it must stop
SHOWN_CHARS = 200  # longer requests are cut short on screen, not in the echo
LINGER_MS = 500  # on exit, how long the last reply may take to leave
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # seconds between tries at an endpoint that is not a broker
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


def connect_socket(ctx, endpoints, max_size):
    sock = ctx.socket(zmq.REP)
    # LINGER is how long closing may wait to deliver what is still queued. The
    # default is forever: libzmq keeps reconnecting to deliver, so a copy with a reply
    # queued for a broker that is gone still ran 30 s after SIGTERM. 0 may drop a
    # reply still leaving at exit (a big echo takes a while); 500 ms lets it leave.
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    # Heartbeats: a frozen (Ctrl-Z) or cut-off peer keeps its TCP connection open
    # but answers nothing; libzmq drops it after 3 s without an answer to a ping.
    # A slow peer is kept while fewer than ~1000 messages (its RCVHWM) wait unread in it.
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
    # A frame over max_size makes libzmq drop that connection. The limit is per
    # frame: a request of many frames, each under it, is taken whole, however big.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size)
    # The monitor reports connections made and lost. It must exist before the
    # first connect, or it can miss that connection's event.
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    return sock, monitor, connect_each(sock, endpoints)


def connect_each(sock, endpoints):
    """Connect to each server once, however many names it is given by: one client's
    connections share its name, and two to one server would take it from each
    other (HANDOVER) again and again. Returns the endpoints connected to."""
    connected = {}  # where an endpoint leads -> the first endpoint that leads there
    for endpoint in endpoints:
        where = check_endpoint(sock, endpoint, "connect to")
        if where not in connected:
            connected[where] = endpoint
            try:
                sock.connect(endpoint)
            except zmq.ZMQError as err:
                refuse(endpoint, "connect to", zmq.strerror(err.errno))
    return list(connected.values())


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


class Connections:
    """Follows the monitor: which brokers this server is connected to, and when
    to try again an endpoint that answered but is not a broker's back end."""

    def __init__(self, sock, monitor):
        self.sock, self.monitor = sock, monitor
        self.up = set()
        self.retry_in = {}  # endpoint -> seconds to wait before the next try
        self.retry_at = {}  # endpoint -> when to try it again

    def follow(self):
        event = recv_monitor_message(self.monitor)
        kind, endpoint = event["event"], event["endpoint"].decode()
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            say(f"python (pid={PID}): connected to broker at {endpoint}")
            self.up.add(endpoint)
            self.retry_in.pop(endpoint, None)
        elif kind == zmq.EVENT_DISCONNECTED:
            # libzmq reconnects by itself after a network error, but gives up for
            # good after a protocol error, such as a frame over --max-size, or a
            # peer of the wrong kind. So this server reconnects itself: at once to
            # a broker it lost (which also drops any reply still queued for it),
            # and ever more slowly to an endpoint that failed its handshake.
            self.sock.disconnect(endpoint)
            if endpoint in self.up:
                self.up.discard(endpoint)
                say(f"python (pid={PID}): lost broker at {endpoint}, reconnecting")
                self.sock.connect(endpoint)
            else:
                if endpoint not in self.retry_in:
                    say(
                        f"python (pid={PID}): no ZeroMQ handshake with {endpoint} (not a"
                        " broker's back end, or not answering); trying again now and then"
                    )
                wait = self.retry_in.get(endpoint, RETRY_FIRST)
                self.retry_in[endpoint] = min(2 * wait, RETRY_MAX)
                self.retry_at[endpoint] = time.monotonic() + wait

    def retry_due(self):
        for endpoint, when in list(self.retry_at.items()):
            if when <= time.monotonic():
                del self.retry_at[endpoint]
                self.sock.connect(endpoint)


def echo_one(sock, work, quiet):
    # Every frame of the request goes back, in order. REP has already
    # stripped the envelope (which client, via which broker) and restores it.
    frames = sock.recv_multipart()
    text = "" if quiet else printable(b"".join(frames))
    if not quiet:
        say(f"python: received '{text}' from client.")
    if work:
        time.sleep(work)
    if not quiet:
        say(f"python (pid={PID}): sending back the received data: {text}")
    sock.send_multipart(frames)


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
    connections = Connections(sock, monitor)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    while not stop:
        ready = dict(poller.poll(POLL_MS))
        # A request first: once polled, it is partly read, and must be finished
        # before the connection it came on may be dropped.
        if sock in ready:
            echo_one(sock, work, quiet)
        if monitor in ready:
            connections.follow()
        connections.retry_due()


def main():
    parser = argparse.ArgumentParser(description="Echo REP server behind the broker.")
    arg = parser.add_argument
    arg("--connect", action="append", metavar="EP", help="broker back end to serve, as"
        " tcp://HOST:PORT; repeat the flag, or separate endpoints with commas, to serve"
        f" several brokers (default {BROKER_ENDPOINT})")  # fmt: skip
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
    endpoints = [ep for arg in args.connect or [BROKER_ENDPOINT] for ep in arg.split(",") if ep]
    if not endpoints:  # --connect "", as from a shell variable never set
        parser.error("--connect needs an endpoint, as tcp://HOST:PORT")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    ctx = zmq.Context()
    try:
        sock, monitor, endpoints = connect_socket(ctx, endpoints, args.max_size)
        say(f"python (pid={PID}): echo server connecting to {', '.join(endpoints)}")
        serve(sock, monitor, stop, args.work, args.quiet)
        say(f"python (pid={PID}): stopped")
    finally:
        ctx.destroy()


if __name__ == "__main__":
    main()
