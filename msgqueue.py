#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["pyzmq"]
# ///
"""msgqueue.py: the broker. ROUTER for clients in front, DEALER for servers behind.

With one server, clients can connect to it directly. With many, something has
to choose a server for each request and notice servers coming and going. This
broker is that something, so neither clients nor servers need to know about
each other: both connect to the broker's two well-known ports.

  * ROUTER (front, clients' REQ sockets connect): receives each request with
    an extra first frame naming the client connection it came from, and on the
    way back uses that frame to send the reply to the right client.
  * DEALER (back, servers' REP sockets connect): hands requests out round-robin
    over the servers that are connected, and takes replies from any of them.

zmq.proxy() moves messages both ways inside libzmq, in C, on a thread of its
own. There is no Python loop per message: the broker costs almost nothing.

One catch: with requests waiting and no server connected, libzmq's proxy
spins at 100% CPU (libzmq issue #4071). So the main thread counts servers,
from the events of a monitor on the back (a server has connected when its
ZeroMQ handshake succeeds; it has left when that connection drops), and runs
the proxy only while the count is above zero. Meanwhile requests simply wait
in the ROUTER. The main thread never blocks for long, so Ctrl-C stops the
broker at once, even where a signal cannot interrupt a blocking call.

Run it first, then servers (mrep.py) and clients (mreq.py) in other terminals:

    python msgqueue.py                 # clients on 5559, servers on 5560

Try:
  * start and stop servers: this terminal shows each one come and go;
  * Ctrl-C it while clients and servers run: clients say they are waiting;
    start it again and everyone reconnects and carries on by themselves;
  * start a second one on other ports and point everyone at both (--connect
    twice): kill either broker and work goes on through the other.
"""

import argparse
import contextlib
import os
import signal
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
BACKLOG = 4096  # connections the OS holds while waiting to be accepted (a class at once)
SPARE_FILES = 32  # open files the broker itself needs besides its connections
HEARTBEAT_MS, SILENT_MS = 1000, 3000  # ping each peer every second; drop it after 3 s silent
POLL_MS = 100  # how often the main loop looks up to see if it must stop
REFUSING_EVERY = 10  # seconds: libzmq retries a refused connection at once; a line, not a flood
PID = os.getpid()


def say(line):
    # flush=True: one line per event, visible at once even through a pipe.
    print(line, flush=True)


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


def new_socket(ctx, kind, max_size):
    sock = ctx.socket(kind)
    # Heartbeats: a frozen (Ctrl-Z) or cut-off peer keeps its TCP connection open
    # but answers nothing; libzmq drops it after 3 s without an answer to a ping.
    # libzmq's own I/O thread answers pings, so a merely slow peer is never dropped.
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)
    # A frame over max_size makes libzmq drop that peer's connection, so one
    # peer cannot make the broker buffer gigabytes. The others are unaffected.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size)
    # libzmq's default backlog is 100: a class reconnecting at once after a
    # restart would overflow it, and the overflow waits seconds to retry.
    sock.setsockopt(zmq.BACKLOG, BACKLOG)
    # The proxy forwards bursts of up to 1000 requests; room towards a server comes
    # back 500 at a time as it reads, so a burst can stop midway and a send wait
    # until that server reads again (for good, if it froze and was dropped). It
    # gives up instead, and is restarted; its client resends the request in hand.
    sock.setsockopt(zmq.SNDTIMEO, POLL_MS)
    return sock


def bind(sock, endpoint):
    # libzmq quietly wraps a TCP port over 65535 (99999 becomes 34463): refuse it.
    port = endpoint.rpartition(":")[2]
    if endpoint.startswith("tcp://") and port.isdigit() and int(port) > 65535:
        sys.exit(f"msgqueue.py: cannot bind {endpoint}: port is over 65535")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        # A missing "tcp://" is the usual slip: say what was meant.
        hint = "" if "://" in endpoint else f" (did you mean tcp://{endpoint}?)"
        sys.exit(f"msgqueue.py: cannot bind {endpoint}: {zmq.strerror(err.errno)}{hint}")
    return sock.LAST_ENDPOINT.decode()


def run_proxy(frontend, backend, control):
    """Thread: move messages until the main thread sends TERMINATE on control."""
    # It fails if a server vanishes as it is sent a request; the main loop restarts it.
    with contextlib.suppress(zmq.ZMQError):
        zmq.proxy_steerable(frontend, backend, None, control)


class Broker:
    """The main thread's view: which back-end connections are servers, and the proxy."""

    def __init__(self, ctx, frontend, backend):
        self.frontend, self.backend = frontend, backend
        self.handshaking = []  # back-end connections (their file numbers) not yet servers
        self.servers = set()
        self.next_refusing_line = 0.0  # no "refusing" line before this time.monotonic()
        self.proxy = None
        self.control = ctx.socket(zmq.PAIR)
        self.control.bind("inproc://proxy-control")
        self.proxy_end = ctx.socket(zmq.PAIR)
        self.proxy_end.connect("inproc://proxy-control")

    def follow(self, event):
        kind, fd = event["event"], event["value"]
        if kind == zmq.EVENT_ACCEPTED:
            self.handshaking.append(fd)
        elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED and self.handshaking:
            # The event does not say which connection; handshakes take one round
            # trip, so it is the newest one. Junk (a port scan, HTTP) never gets here.
            self.servers.add(self.handshaking.pop())
            say(f"python (pid={PID}): server connected, {len(self.servers)} connected now")
        elif kind == zmq.EVENT_DISCONNECTED and fd in self.servers:
            self.servers.discard(fd)
            say(f"python (pid={PID}): server left, {len(self.servers)} connected now")
            if not self.servers:
                say(f"python (pid={PID}): no server connected, requests wait")
        elif kind == zmq.EVENT_DISCONNECTED and fd in self.handshaking:
            self.handshaking.remove(fd)  # never a server: it failed its handshake
        elif kind == zmq.EVENT_ACCEPT_FAILED and time.monotonic() > self.next_refusing_line:
            self.next_refusing_line = time.monotonic() + REFUSING_EVERY
            say(
                f"python (pid={PID}): refusing connections: {zmq.strerror(fd)};"
                " raise the open-file limit (ulimit -n) or start another broker"
            )

    def start_or_stop_proxy(self):
        if self.proxy and not self.proxy.is_alive():
            self.proxy = None  # it failed; start it again if there is a server
        if self.servers and not self.proxy:
            args = (self.frontend, self.backend, self.proxy_end)
            self.proxy = threading.Thread(target=run_proxy, args=args, daemon=True)
            self.proxy.start()
        elif not self.servers and self.proxy:
            self.stop_proxy()

    def stop_proxy(self):
        if self.proxy:
            self.control.send(b"TERMINATE")
            while self.proxy.is_alive():
                self.proxy.join(POLL_MS / 1000)  # short waits: a signal is seen
            while self.control.poll(0):
                self.control.recv()  # the proxy's acknowledgement
            self.proxy = None

    def run(self, front_monitor, back_monitor, stop):
        poller = zmq.Poller()
        poller.register(front_monitor, zmq.POLLIN)
        poller.register(back_monitor, zmq.POLLIN)
        try:
            while not stop:
                for monitor, _ in poller.poll(POLL_MS):
                    self.follow(recv_monitor_message(monitor))
                self.start_or_stop_proxy()
        finally:
            self.stop_proxy()


def stop_requests():
    """Turn Ctrl-C and SIGTERM into a note that the main loop reads. Setting it
    explicitly also undoes a shell's ignoring SIGINT for a command run with "&"."""
    requested = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: requested.append(signum))
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
    if args.max_size < 1:
        parser.error("--max-size must be at least 1")

    stop = stop_requests()
    room = raise_open_file_limit()
    ctx = zmq.Context()
    try:
        frontend = new_socket(ctx, zmq.ROUTER, args.max_size)
        # Clients name themselves; a client that reconnects before its old
        # connection was noticed dead takes its name over instead of being refused.
        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)
        backend = new_socket(ctx, zmq.DEALER, args.max_size)
        # Monitors before binding, or a server that connects at once is missed.
        refused = zmq.EVENT_ACCEPT_FAILED
        front_monitor = frontend.get_monitor_socket(refused)
        servers = zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        back_monitor = backend.get_monitor_socket(refused | servers)
        front, back = bind(frontend, args.frontend), bind(backend, args.backend)
        limit = f" (room for {room} connections)" if room else ""
        say(f"python (pid={PID}): broker up, clients on {front}, servers on {back}{limit}")
        Broker(ctx, frontend, backend).run(front_monitor, back_monitor, stop)
        say(f"python (pid={PID}): stopped")
    finally:
        # LINGER 0 on every socket: drop messages in flight, or a server that reads
        # nothing would keep the broker from exiting. The clients resend them.
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
