#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""mrep.py: one of many servers. A REP server behind the broker that echoes requests.

The same REP socket as rep.py, but it connects to the broker's back end
(msgqueue.py, port 5560) instead of binding: start as many as you like, in any
order, anywhere; the broker hands each one requests in turn.

The pattern, as the zguide writes it (a test runs this very code):

    context = zmq.Context()
    socket = context.socket(zmq.REP)
    socket.connect("tcp://127.0.0.1:5560")
    while True:
        request = socket.recv()
        socket.send(request)

Run msgqueue.py, then this in several terminals (--work 0.5: half a second of
"work" per request), then mreq.py.

Try: Ctrl-C one (it answers the request in hand); kill -9 one during --work 2
(its client resends); Ctrl-Z one (the broker drops it within 3 to 4 s; fg, and it
rejoins); kill them all, start more, restart the broker: the clients carry on.
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
SHOWN_CHARS = 200  # longer requests are cut short on screen, not in the reply
LINGER_MS = 500  # on exit, how long the last reply may take to leave
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # seconds between tries at an endpoint that is not a broker
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name


def answer(request):
    """The tutorial's work, and all an assignment changes: the reply to a request.
    Both are lists of frames (a request has one, unless its client sent more)."""
    return request


def serve(sock, monitor, stop, work, quiet):
    """The pattern: receive a request, answer it, send the reply; until Ctrl-C."""
    connections = Connections(sock, monitor)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)  # brokers connected and lost
    while not stop:  # poll, not recv: look up every POLL_MS to see Ctrl-C
        ready = dict(poller.poll(POLL_MS))
        # A request first: once polled it is partly read, and its connection must stay.
        if sock in ready:
            request = sock.recv_multipart()  # REP keeps who asked, for the reply
            if not quiet:
                shown = printable(b"".join(request))
                say(f"python: received '{shown}' from client.")
            time.sleep(work)
            reply = answer(request)
            if not quiet:
                shown = printable(b"".join(reply))
                say(f"python (pid={PID}): sending back the received data: {shown}")
            sock.send_multipart(reply)
        if monitor in ready:
            connections.follow()
        connections.retry_due()


def connect_socket(ctx, endpoints, max_size):
    sock = ctx.socket(zmq.REP)
    # LINGER: how long closing may wait to deliver; forever by default, 0 drops a reply.
    # Forever, a server with a reply queued for a broker that is gone would never exit.
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    # Heartbeats: a frozen (Ctrl-Z) or cut-off peer keeps its TCP connection open
    # but answers nothing; libzmq drops it after 3 s without an answer to a ping.
    # A slow peer is kept while fewer than ~1000 messages (its RCVHWM) wait unread in it.
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
    # A frame over max_size drops that peer, and only it; the limit is per frame.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size)
    # The monitor must exist before the first connect, or it can miss that one's events.
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
    """Follows the monitor, and reconnects: libzmq does so itself after a network error,
    but not after a protocol error (a frame over --max-size, a peer of the wrong kind)."""

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
            self.sock.disconnect(endpoint)  # this also drops any reply still queued for it
            if endpoint in self.up:  # a broker lost: back to it at once
                self.up.discard(endpoint)
                say(f"python (pid={PID}): lost broker at {endpoint}, reconnecting")
                self.sock.connect(endpoint)
            else:  # no handshake: not a broker's back end; try again ever more slowly
                if endpoint not in self.retry_in:
                    say(f"python (pid={PID}): no ZeroMQ handshake with {endpoint} (not a broker's"
                        " back end, or not answering); trying again now and then")  # fmt: skip
                wait = self.retry_in.get(endpoint, RETRY_FIRST)
                self.retry_in[endpoint] = min(2 * wait, RETRY_MAX)
                self.retry_at[endpoint] = time.monotonic() + wait

    def retry_due(self):
        for endpoint, when in list(self.retry_at.items()):
            if when <= time.monotonic():
                del self.retry_at[endpoint]
                self.sock.connect(endpoint)


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
    parser = argparse.ArgumentParser(description="Echo REP server behind the broker.")
    arg = parser.add_argument
    arg("--connect", action="append", metavar="EP", help="broker back end, as tcp://HOST:PORT;"
        f" repeat it, or use commas, for several (default {BROKER_ENDPOINT})")  # fmt: skip
    arg("--work", type=float, default=0.0, help="seconds of pretend work per request")
    arg("--max-size", type=int, default=MAX_SIZE, help="drop a peer sending a bigger frame")
    arg("--quiet", action="store_true", help="no per-request lines")
    args = parser.parse_args()
    if not 0 <= args.work <= 86400:  # "not <=" also refuses nan
        parser.error("--work must be 0 to 86400 seconds")
    if not MIN_SIZE <= args.max_size < 2**63:  # libzmq keeps it in 64 bits
        parser.error(f"--max-size must be {MIN_SIZE} (a handshake sends 296) to 2**63 - 1")
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
