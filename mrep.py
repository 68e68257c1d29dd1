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
import hashlib
import os
import signal
import socket
import sys
import time
import unicodedata

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

BROKER_ENDPOINT = "tcp://127.0.0.1:5560"  # the broker's back, for servers
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
MIN_SIZE = 512  # bytes; ZeroMQ's own handshake sends frames of up to 296 (--secret: 544)
SEALING = 33  # bytes --secret adds to each frame: allowed for, --max-size counts data
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each peer every second; drop it after 3 s silent
POLL_MS = 100  # how often the loop looks up from the socket to see if it must stop
SHOWN_CHARS = 200  # longer requests are cut short on screen, not in the reply
LINGER_MS = 500  # on exit, how long the last reply may take to leave
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # seconds between tries at an endpoint that is not a broker
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name
SALT = b"zmq-reqrep-tutorial --secret"  # every script's: one phrase, one key pair


def answer(request):
    """The tutorial's work, and all an assignment changes: the reply to a request."""
    return request


# The lines that name that work: change them with it.
RECEIVED = "python: received '{request}' from client."
SENDING = "python (pid={pid}): sending back the received data: {reply}"
CONNECTING = "python (pid={pid}): echo server connecting to {where}"


def serve(sock, brokers, stop, work, quiet):
    """The pattern: receive a request, answer it, send the reply; until Ctrl-C."""
    while not stop:
        try:
            frame = sock.recv(copy=False)  # a Frame, not bytes: it has .more; REP keeps who asked
        except zmq.Again:  # none for POLL_MS (RCVTIMEO): look up, to see Ctrl-C
            brokers.follow()  # brokers connected and lost, and tries again due
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
        if time.monotonic() > brokers.followed + POLL_MS / 1000:  # busy: follow them too
            brokers.follow()


def connect_socket(ctx, endpoints, max_size, secret):
    sock = ctx.socket(zmq.REP)
    # LINGER: not forever (the default: a reply for a broker gone blocks exit), nor 0 (lost).
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.RCVTIMEO, POLL_MS)  # a wait for a request ends after POLL_MS
    # Heartbeats: libzmq drops a peer that answers no ping for 3 s (frozen by Ctrl-Z, or cut
    # off); a slow one is kept while fewer than ~1000 messages (its RCVHWM) wait unread in it.
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
    # A bigger frame drops that peer, and only it; --secret makes each SEALING bytes longer.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size + (SEALING if secret else 0))
    if secret:  # --secret: CURVE, with the server's public key from the phrase
        sock.curve_serverkey = curve_keys(secret)[0]
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()  # its own
    # The monitor must exist before the first connect, or it can miss that one's events.
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    return sock, monitor, connect_each(sock, endpoints)


def connect_each(sock, endpoints):
    """Connect once to each peer, however many endpoints name it; return those used,
    by where each leads.
    Two connections to one peer cost: a client's would take its name from each other
    (HANDOVER) again and again; a server would be counted, and dealt requests, twice."""
    connected = {}  # where an endpoint leads -> the first endpoint that leads there
    for endpoint in endpoints:
        where = check_endpoint(sock, endpoint)
        if where not in connected:
            connected[where] = endpoint
            try:
                sock.connect(endpoint)
            except zmq.ZMQError as err:
                refuse(endpoint, "connect to", zmq.strerror(err.errno))
    return connected


def as_given(connected, endpoint):
    """An event's endpoint as it was given: libzmq names one it retried by its address."""
    scheme, _, address = endpoint.partition("://")
    host, _, port = address.rpartition(":")
    where = (host.strip("[]"), int(port)) if scheme == "tcp" and port.isdigit() else endpoint
    return connected.get(where, endpoint)


def check_endpoint(sock, endpoint):
    """Refuse, in one line, an endpoint that cannot work; return where it leads.
    libzmq checks the rest, but resolves a host name only later, and quietly."""
    if not endpoint.isprintable():  # a control character, or bytes that are not UTF-8
        refuse(ascii(endpoint), "connect to", "not printable")
    scheme, _, address = endpoint.partition("://")
    host, _, port = address.rpartition(":")
    host = host.rpartition(";")[2].strip("[]")  # tcp://SOURCE;HOST:PORT, tcp://[::1]:PORT
    if scheme == "inproc":
        refuse(endpoint, "connect to", "inproc:// reaches only sockets in the same process")
    if scheme != "tcp":
        return endpoint
    if ":" in host:  # an IPv6 address, which libzmq takes only with IPV6 on
        sock.setsockopt(zmq.IPV6, 1)
    if not (port.isascii() and port.isdigit()):  # libzmq would take "6x" for 6, -1 for 65535
        refuse(endpoint, "connect to", "no port number at its end (tcp://HOST:PORT)")
    if int(port) > 65535:  # libzmq would quietly wrap it: 99999 becomes 34463
        refuse(endpoint, "connect to", "port is over 65535")
    if int(port) == 0:
        refuse(endpoint, "connect to", "port 0 is for binding (any free port), not connecting")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as libzmq resolves it
    try:
        return socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)[0][4][:2]
    except socket.gaierror as err:
        refuse(endpoint, "connect to", f"host {host!r} does not resolve ({err.strerror})")
    except UnicodeError:  # a part of it empty or over 63 letters: "a..b"
        refuse(endpoint, "connect to", f"{host!r} is not a host name")


def refuse(endpoint, doing, why):
    hint = "" if "://" in endpoint else f" (did you mean tcp://{endpoint}?)"  # the usual slip
    sys.exit(f"{NAME}: cannot {doing} {endpoint}: {why}{hint}")


def curve_keys(phrase):
    """--secret: the system's CURVE key pair, from the phrase alone (no key files). Servers
    need the secret key, clients the public one, never sent: only who knows the phrase gets
    through. Slow on purpose (0.2 s): each guess at a captured handshake costs as much."""
    # As typed on any system (an accent one character or two), even bytes that are not UTF-8.
    data = unicodedata.normalize("NFC", phrase).encode("utf-8", "surrogateescape")
    raw = hashlib.pbkdf2_hmac("sha256", data, SALT, 400_000, dklen=32)
    secret = z85.encode(raw)  # any 32 bytes make a secret key (libsodium clamps them)
    return zmq.curve_public(secret), secret


class Connections:
    """Follows the monitor, and reconnects: libzmq does so itself after a network error,
    but not after a protocol error (a frame over --max-size, a peer of the wrong kind)."""

    def __init__(self, sock, monitor, connected):
        self.sock, self.monitor, self.connected = sock, monitor, connected
        self.up, self.followed = set(), 0.0
        self.retry_in, self.retry_at = {}, {}  # endpoint -> next wait; when to try it

    def follow(self):
        self.followed = time.monotonic()
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)
            self.seen(event["event"], as_given(self.connected, event["endpoint"].decode()))
        for endpoint, when in list(self.retry_at.items()):
            if when <= time.monotonic():
                del self.retry_at[endpoint]
                self.sock.connect(endpoint)

    def seen(self, kind, endpoint):
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            say(f"python (pid={PID}): connected to broker at {endpoint}")
            self.up.add(endpoint)
            self.retry_in.pop(endpoint, None)
        elif kind == zmq.EVENT_DISCONNECTED:
            try:
                self.sock.disconnect(endpoint)  # this also drops any reply still queued for it
            except zmq.ZMQError:  # done already, for an earlier event: libzmq had retried
                return
            if endpoint in self.up:  # a broker lost: back to it at once
                self.up.discard(endpoint)
                say(f"python (pid={PID}): lost broker at {endpoint}, reconnecting")
                self.sock.connect(endpoint)
            else:  # no handshake: not a broker's back end; try again ever more slowly
                if endpoint not in self.retry_in:
                    say(f"python (pid={PID}): no ZeroMQ handshake with {endpoint} (not a"
                        " broker's back end, not answering, or not the same --secret);"
                        " trying again now and then")  # fmt: skip
                wait = self.retry_in.get(endpoint, RETRY_FIRST)
                self.retry_in[endpoint] = min(2 * wait, RETRY_MAX)
                self.retry_at[endpoint] = time.monotonic() + wait


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
    endpoints = [ep for arg in args.connect or [BROKER_ENDPOINT] for ep in arg.split(",") if ep]
    if not endpoints:  # --connect "", as from a shell variable never set
        parser.error("--connect needs an endpoint, as tcp://HOST:PORT")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    ctx = zmq.Context()
    try:
        sock, monitor, connected = connect_socket(ctx, endpoints, args.max_size, args.secret)
        say(CONNECTING.format(pid=PID, where=", ".join(connected.values())))
        serve(sock, Connections(sock, monitor, connected), stop, args.work, args.quiet)
        say(f"python (pid={PID}): stopped")
    finally:
        ctx.destroy()


if __name__ == "__main__":
    main()
