#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""c.py: a player. A REQ client that sends the time and checks the SHA-1 it gets back.

REQ is the socket for asking: send a request, wait for its reply, repeat.
It connects to the server (rep.py), so servers can come and go while the
client keeps running; ZeroMQ reconnects by itself.

A plain REQ hangs forever if the server dies holding its request: the reply
never comes and the socket refuses to send again. This one resends after
--timeout seconds (the zguide's "Lazy Pirate", done with socket options).

Run rep.py first, then this in as many terminals as you like:

    python c.py
    python c.py --count 5 --interval 0.2     # five checked round trips, then exit

Try:
  * stop rep.py while clients run: they say they are waiting and resend;
    start it again and they carry on, with no request lost;
  * --connect twice (two servers): requests are spread over both, and
    either one can die without the client noticing more than one resend.
"""

import argparse
import hashlib
import os
import signal
import socket
import sys
import time
import uuid

import zmq

SERVER_ENDPOINT = "tcp://127.0.0.1:5556"
INTERVAL = 1.0  # seconds between a reply and the next request
TIMEOUT = 2.5  # seconds without a reply before the request is sent again
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each peer every second; drop it after 3 s silent
POLL_MS = 100  # every wait is cut in slices this long, to see Ctrl-C at once
PID = os.getpid()
NAME = os.path.basename(__file__)  # in every message: a copy speaks its own name


def say(line):
    # flush=True: one line per event, visible at once even through a pipe.
    try:
        print(line, flush=True)
    except OSError:  # nobody reads any more (a closed pipe, a closed terminal, a full disk)
        stop_printing()
        signal.raise_signal(signal.SIGTERM)  # so stop, as on Ctrl-C (think: c.py | head -3)


def stop_printing():
    """Send stdout to the null device: every later line goes nowhere, and none fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def printable(data):
    """The bytes as one line of text: what is not UTF-8 or not printable is escaped."""
    text = data.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def connect_socket(ctx, endpoints):
    sock = ctx.socket(zmq.REQ)
    # RELAXED: a REQ may send a new request before the old one was answered,
    # which is how we resend. CORRELATE: each request carries an id, and a late
    # reply to an earlier one is dropped instead of being taken for this one.
    sock.setsockopt(zmq.REQ_RELAXED, 1)
    sock.setsockopt(zmq.REQ_CORRELATE, 1)
    # A name of our own for this client. Left to itself, every broker process
    # numbers its clients in the same sequence, so a reply finished after a
    # broker restart could be routed to whichever client now has our number.
    sock.setsockopt(zmq.ROUTING_ID, uuid.uuid4().hex.encode())
    # IMMEDIATE: queue a request only on a connection that is up, never for a
    # server that is down. With none up, the socket is not writable, and the
    # client waits for one (below) instead of parking the request.
    sock.setsockopt(zmq.IMMEDIATE, 1)
    # Heartbeats: a frozen (Ctrl-Z) or cut-off peer keeps its TCP connection open
    # but answers nothing; libzmq drops it after 3 s without an answer to a ping.
    # A slow peer is kept while fewer than ~1000 messages (its RCVHWM) wait unread in it.
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
    return sock, connect_each(sock, endpoints)


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


class Requester:
    """The REQ socket, waited on in slices of POLL_MS so that Ctrl-C is seen within
    a slice, even where a signal cannot interrupt a blocking call (Windows)."""

    def __init__(self, sock, stop):
        self.sock, self.stop = sock, stop
        self.rcvtimeo = None  # the socket's RCVTIMEO: set only when it changes

    def slices(self, seconds):
        """The length in ms of each slice of a wait, until `seconds` pass or Ctrl-C."""
        deadline = time.monotonic() + seconds
        while not self.stop:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            yield max(1, min(POLL_MS, int(left * 1000)))

    def send(self, data, timeout):
        """Send as soon as a connection takes it; False after timeout s or on Ctrl-C."""
        for ms in self.slices(timeout):
            try:
                self.sock.send(data, zmq.NOBLOCK)
                return True
            except zmq.Again:  # IMMEDIATE: nothing is connected; wait until something is
                self.sock.poll(ms, zmq.POLLOUT)
        return False

    def receive(self, timeout):
        """The reply to the last request; None after timeout s or on Ctrl-C."""
        for ms in self.slices(timeout):
            if ms != self.rcvtimeo:  # shorter only in the last slice
                self.rcvtimeo = ms
                self.sock.setsockopt(zmq.RCVTIMEO, ms)
            try:
                return b"".join(self.sock.recv_multipart())
            except zmq.Again:
                pass  # no reply in this slice (REQ_CORRELATE drops stale ones unseen)
        return None

    def pause(self, seconds):
        for ms in self.slices(seconds):
            time.sleep(ms / 1000)


def request(requester, data, timeout, retries):
    """Send data and return its reply, resending after each timeout.
    Returns None once retries resends have gone unanswered, or on Ctrl-C."""
    retry = 0
    while not requester.stop:
        if requester.send(data, timeout):
            reply = requester.receive(timeout)
            if reply is not None:
                return reply
            problem = f"no reply within {timeout:g} s"
        else:
            problem = f"no server reachable for {timeout:g} s"
        if requester.stop:
            break
        if retries is not None and retry >= retries:
            tries = "retry" if retry == 1 else "retries"
            say(f"python (pid={PID}): {problem}, giving up after {retry} {tries}")
            return None
        retry += 1
        say(f"python (pid={PID}): {problem}, resending (retry {retry})")
    return None


def run(requester, args):
    """Send the time until args.count replies came back; the exit status."""
    verified = mismatched = 0
    while args.count is None or verified + mismatched < args.count:
        if verified + mismatched and args.interval:
            requester.pause(args.interval)
        data = time.ctime().encode()
        if not args.quiet and not requester.stop:
            say(f"python (pid={PID}): sending data: '{data.decode()}'")
        reply = request(requester, data, args.timeout, args.retries)
        if requester.stop:
            say(f"python (pid={PID}): interrupted, exiting")
            return 0
        if reply is None:
            return 1
        expected = hashlib.sha1(data).hexdigest()
        if reply == expected.encode():
            verified += 1
            if not args.quiet:
                say(f"python (pid={PID}): received sha1 of data: {expected}")
        else:
            mismatched += 1
            say(f"python (pid={PID}): sha1 mismatch: expected {expected}, got '{printable(reply)}'")
    say(f"python (pid={PID}): done, {verified} replies verified, {mismatched} mismatched")
    return 1 if mismatched else 0


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
    parser = argparse.ArgumentParser(description="REQ client that checks SHA-1 digests.")
    arg = parser.add_argument
    arg("--connect", action="append", metavar="EP", help="server to ask, as tcp://HOST:PORT;"
        " repeat the flag, or separate endpoints with commas, to spread requests over"
        f" several (default {SERVER_ENDPOINT})")  # fmt: skip
    arg("--interval", type=float, default=INTERVAL, metavar="SECONDS",
        help="pause after each reply, before the next request (default %(default)s)")  # fmt: skip
    arg("--count", type=int, metavar="N",
        help="stop after N replies; exit 1 if any did not match (default: never stop)")  # fmt: skip
    arg("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
        help="resend a request unanswered for this long (default %(default)s)")  # fmt: skip
    arg("--retries", type=int, metavar="N",
        help="give up (exit 1) after resending one request N times (default: never)")  # fmt: skip
    arg("--quiet", action="store_true", help="no per-request lines")
    args = parser.parse_args()
    if not 0 <= args.interval <= 86400:  # "not <=" also refuses nan
        parser.error("--interval must be 0 to 86400 seconds")
    if not 0.1 <= args.timeout <= 86400:  # shorter: a resend before most replies come
        parser.error("--timeout must be 0.1 to 86400 seconds")
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.retries is not None and args.retries < 0:
        parser.error("--retries must be 0 or more")
    endpoints = [ep for arg in args.connect or [SERVER_ENDPOINT] for ep in arg.split(",") if ep]
    if not endpoints:  # --connect "", as from a shell variable never set
        parser.error("--connect needs an endpoint, as tcp://HOST:PORT")

    if sys.stdout:  # None when started with stdout closed: then print() prints nothing
        sys.stdout.reconfigure(errors="backslashreplace")  # any text, on any terminal
    stop = stop_requests()
    ctx = zmq.Context()
    try:
        sock, endpoints = connect_socket(ctx, endpoints)
        say(f"python (pid={PID}): client connecting to {', '.join(endpoints)}")
        status = run(Requester(sock, stop), args)
    finally:
        # LINGER 0 on every socket: Ctrl-C exits at once, not once a request is delivered.
        ctx.destroy(linger=0)
    sys.exit(status)


if __name__ == "__main__":
    main()
