#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""mreq.py: one of many clients. A REQ client of the broker that checks its echo.

c.py's REQ socket, pointed at the broker's front (msgqueue.py, port 5559). It
sends 10 random letters and its pid, and checks that the echo is exactly that:
the broker must route each reply to the client that asked, no other.

The pattern, as the zguide writes it (a test runs this very code):

    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    socket.connect("tcp://127.0.0.1:5559")
    for _ in range(3):
        request = "".join(random.choices("qwertyuiop", k=10)).encode()
        socket.send(request)
        assert socket.recv() == request

Run msgqueue.py and some mrep.py first, then `python mreq.py` in several terminals
(with --count 5, it stops after five checked round trips).

Try: kill servers, all of them, the broker: clients say they wait, resend, and
carry on by themselves. Two brokers (--connect twice, here and in every mrep.py):
kill either one, and requests go through the other.
"""

import argparse
import contextlib
import errno
import hashlib
import os
import random
import signal
import socket
import sys
import time
import unicodedata
import uuid

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

ENDPOINT = "tcp://127.0.0.1:5559"  # the broker's front, for clients
PEER = "broker"  # what ENDPOINT is, as the lines name it
INTERVAL = 1.0  # seconds between a reply and the next request
TIMEOUT = 2.5  # seconds without a reply before the request is sent again
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each peer every second; drop it after 3 s silent
POLL_MS = 100  # every wait is cut in slices this long, to see Ctrl-C at once
SHOWN_CHARS = 200  # longer requests and replies are cut short on screen
SALT = b"zmq-reqrep-tutorial --secret"  # every script's: one phrase, one key pair
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name


def new_request():
    """The tutorial's work, and all an assignment changes: the next request..."""
    letters = "".join(random.choice("qwertyuiop") for _ in range(10))
    return f"{letters} (from client pid={PID})".encode()


def check_reply(request, reply):
    """...and whether a reply to it is right: here, the request itself (an echo)."""
    return reply == request


# The per-request lines, which name that work: change them with it ("" prints none).
SENDING = ""  # the tutorial's mreq.py shows only what came back
RIGHT = "{stamp} python (pid={pid}) received the original data: {reply}"
WRONG = "python (pid={pid}): echo mismatch: sent '{request}', got '{reply}'"


def ask(sock, refusals, stop, request, *, timeout, retries):
    """The pattern: send the request, wait for its reply; after timeout s without one,
    send it again. The reply; None on Ctrl-C, or once `retries` resends went unanswered."""
    retry = 0
    while True:
        sent = within(timeout, stop, lambda: sock.send(request))
        reply = sent and within(timeout, stop, sock.recv_multipart)
        refusals.check()  # a server that ended a handshake, and why
        if reply:
            return b"".join(reply)
        if stop:
            return None
        why = "reply within" if sent else f"{PEER} reachable for"  # IMMEDIATE: none is up
        if retries is not None and retry >= retries:
            tries = "retry" if retry == 1 else "retries"
            say(f"python (pid={PID}): no {why} {timeout:g} s, giving up after {retry} {tries}")
            return None
        retry += 1
        say(f"python (pid={PID}): no {why} {timeout:g} s, resending (retry {retry})")


def run(sock, refusals, stop, args):
    """New requests, asked and checked, until --count replies came back or Ctrl-C.
    The exit status: 1 if a reply was wrong or the client gave up, else 0."""
    verified = mismatched = 0
    while args.count is None or verified + mismatched < args.count:
        if verified + mismatched and args.interval:
            pause(args.interval, stop)
        request = new_request()
        if not args.quiet and not stop:
            show(SENDING, request)
        reply = ask(sock, refusals, stop, request, timeout=args.timeout, retries=args.retries)
        if stop:
            say(f"python (pid={PID}): interrupted, exiting")
            return 0
        if reply is None:
            return 1
        if check_reply(request, reply):
            verified += 1
            if not args.quiet:
                show(RIGHT, request, reply)
        else:
            mismatched += 1
            show(WRONG, request, reply)
    say(f"python (pid={PID}): done, {verified} replies verified, {mismatched} mismatched")
    return 1 if mismatched else 0


def within(seconds, stop, call):
    """call() until it does not time out (each try waits a slice at most), for `seconds`
    at most or until Ctrl-C. What it returned (True for a send's None), or False."""
    deadline = time.monotonic() + seconds
    while not stop and time.monotonic() < deadline:
        try:
            done = call()
            return True if done is None else done
        except zmq.Again:
            pass
    return False


def pause(seconds, stop):
    """Sleep in slices of POLL_MS, so that Ctrl-C is seen within one, even on Windows."""
    deadline = time.monotonic() + seconds
    while not stop and time.monotonic() < deadline:
        time.sleep(max(0, min(POLL_MS / 1000, deadline - time.monotonic())))


def show(line, request, reply=b""):
    """One of the lines above, filled in ({stamp}: the date and time, as mreq.py's)."""
    if line:  # "": that line is not printed
        stamp = time.strftime("%y-%m-%d %H:%M:%S")
        say(line.format(pid=PID, stamp=stamp, request=printable(request), reply=printable(reply)))


def connect_socket(ctx, endpoints, secret):
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.REQ_RELAXED, 1)  # it may send a request again before a reply,
    sock.setsockopt(zmq.REQ_CORRELATE, 1)  # and then drops replies to the earlier sends
    # Its own name: a restarted broker gives out the old one's numbers; late replies would stray.
    sock.setsockopt(zmq.ROUTING_ID, uuid.uuid4().hex.encode())
    sock.setsockopt(zmq.IMMEDIATE, 1)  # queue a request only for a peer that is up
    sock.setsockopt(zmq.SNDTIMEO, POLL_MS)  # a send or a receive waits one slice at most:
    sock.setsockopt(zmq.RCVTIMEO, POLL_MS)  # Ctrl-C is seen between two, even on Windows
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)  # libzmq drops a peer that answers
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)  # no ping for 3 s (frozen, cut off)
    if secret:  # --secret: CURVE, with the server's public key from the phrase
        sock.curve_serverkey = curve_keys(secret)[0]
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()  # its own
    refusals = Refusals(sock, secret)  # its monitor before the first connect: it sees all
    connected = refusals.connected = connect_each(sock, endpoints)
    return sock, refusals, list(connected.values())


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


class Refusals:
    """Says once per server that it ended the handshake, and why if ZeroMQ knows:
    a --secret on one side only, or a different one. Only the monitor hears of it
    (sends just wait), and after a mismatch libzmq never tries that server again."""

    def __init__(self, sock, secret):
        self.sock, self.secret, self.told, self.checked = sock, secret, set(), 0.0
        self.connected = {}  # where each endpoint leads -> the endpoint given
        events = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_SUCCEEDED
        if secret:  # a server with another phrase just hangs up: no reason given
            events |= zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        self.monitor = sock.get_monitor_socket(events)  # before connecting: sees them all

    def check(self):
        if time.monotonic() < self.checked + POLL_MS / 1000:  # a look costs: not per request
            return
        self.checked = time.monotonic()
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)
            kind, value = event["event"], event["value"]
            endpoint = as_given(self.connected, event["endpoint"].decode())
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.told.discard(endpoint)
            elif value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                with contextlib.suppress(zmq.ZMQError):  # gone: an older event's
                    self.sock.disconnect(endpoint)  # connect anew: libzmq would not
                    self.sock.connect(endpoint)
                why = "it has no --secret" if self.secret else "it has a --secret, this one none"
                self.tell(endpoint, why)
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and value != errno.EAGAIN:
                self.tell(endpoint, "a different --secret, or none?")  # EAGAIN: 30 s silent

    def tell(self, endpoint, why):
        if endpoint not in self.told:
            self.told.add(endpoint)
            say(f"python (pid={PID}): {PEER} at {endpoint} ended the handshake ({why})")


def curve_keys(phrase):
    """--secret: the system's CURVE key pair, from the phrase alone (no key files). Servers
    need the secret key, clients the public one, never sent: only who knows the phrase gets
    through. Slow on purpose (0.2 s): each guess at a captured handshake costs as much."""
    # As typed on any system (an accent one character or two), even bytes that are not UTF-8.
    data = unicodedata.normalize("NFC", phrase).encode("utf-8", "surrogateescape")
    raw = hashlib.pbkdf2_hmac("sha256", data, SALT, 400_000, dklen=32)
    secret = z85.encode(raw)  # any 32 bytes make a secret key (libsodium clamps them)
    return zmq.curve_public(secret), secret


def say(line):
    try:
        print(line, flush=True)  # flush: each line shows at once, even through a pipe
    except OSError:  # nobody reads any more (a closed pipe or terminal, a full disk):
        devnull = os.open(os.devnull, os.O_WRONLY)  # later lines go nowhere, and none
        os.dup2(devnull, sys.stdout.fileno())  # fails; the client stops, as on Ctrl-C
        os.close(devnull)  # (think: c.py | head -3)
        signal.raise_signal(signal.SIGTERM)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--connect", action="append", metavar="EP", help=f"{PEER} to ask, as tcp://HOST:PORT;"
        f" repeat it, or use commas, to spread requests (default {ENDPOINT})")  # fmt: skip
    arg("--interval", type=float, default=INTERVAL, metavar="SECONDS",
        help="pause after each reply, before the next request (default %(default)s)")  # fmt: skip
    arg("--count", type=int, metavar="N", help="stop after N replies; exit 1 if any was wrong")
    arg("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
        help="resend a request unanswered for this long (default %(default)s)")  # fmt: skip
    arg("--retries", type=int, metavar="N", help="give up (exit 1) after N resends of one request")
    arg("--quiet", action="store_true", help="no per-request lines")
    arg("--secret", default=os.environ.get("REQREP_SECRET"), metavar="PHRASE",
        help="encrypt, and work only with peers given the same phrase"
        " (default: $REQREP_SECRET; unlike arguments, no other user can read it)")  # fmt: skip
    args = parser.parse_args()
    if not 0 <= args.interval <= 86400:  # "not <=" also refuses nan
        parser.error("--interval must be 0 to 86400 seconds")
    if not 0.1 <= args.timeout <= 86400:  # shorter: a resend before most replies come
        parser.error("--timeout must be 0.1 to 86400 seconds")
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.retries is not None and args.retries < 0:
        parser.error("--retries must be 0 or more")
    if args.secret == "":  # --secret "", as from a shell variable never set
        parser.error("--secret needs a phrase (it, or REQREP_SECRET, is empty)")
    if args.secret and not zmq.has("curve"):
        parser.error("--secret needs a libzmq built with CURVE (pip's pyzmq has it)")
    endpoints = [ep for arg in args.connect or [ENDPOINT] for ep in arg.split(",") if ep]
    if not endpoints:  # --connect "", as from a shell variable never set
        parser.error("--connect needs an endpoint, as tcp://HOST:PORT")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    ctx = zmq.Context()
    try:
        sock, refusals, endpoints = connect_socket(ctx, endpoints, args.secret)
        say(f"python (pid={PID}): client connecting to {', '.join(endpoints)}")
        status = run(sock, refusals, stop, args)
    finally:
        ctx.destroy(linger=0)  # LINGER 0: Ctrl-C exits at once, not once a request is delivered
    sys.exit(status)


if __name__ == "__main__":
    main()
