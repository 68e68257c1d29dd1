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

zmq.proxy() moves messages both ways inside libzmq, in C. There is no Python
loop per message: the broker costs almost nothing, and a server that comes
or goes is just a connection DEALER adds to or drops from its round-robin.

One catch: with requests waiting and no server connected, libzmq's proxy
spins at 100% CPU (libzmq issue #4071). So this broker runs the proxy only
while a server is connected: a small thread watches the back for servers
leaving and stops the proxy, and the main loop restarts it once a server
is there to take requests. Meanwhile requests simply wait in the ROUTER.

Run it first, then servers (mrep.py) and clients (mreq.py) in other terminals:

    python msgqueue.py                 # clients on 5559, servers on 5560

Try:
  * Ctrl-C it while clients and servers run: clients say they are waiting;
    start it again and everyone reconnects and carries on by themselves;
  * start a second one on other ports and point everyone at both (--connect
    twice): kill either broker and work goes on through the other.
"""

import argparse
import os
import signal
import sys
import threading

import zmq
from zmq.utils.monitor import recv_monitor_message

FRONTEND_ENDPOINT = "tcp://127.0.0.1:5559"  # clients (mreq.py) connect here
BACKEND_ENDPOINT = "tcp://127.0.0.1:5560"  # servers (mrep.py) connect here
MAX_SIZE = 1024 * 1024  # bytes; a peer that sends a bigger frame is disconnected
CONTROL_ENDPOINT = "inproc://proxy-control"  # how the watcher thread stops the proxy
PID = os.getpid()


def say(line):
    # flush=True: one line per event, visible at once even through a pipe.
    print(line, flush=True)


def bind_socket(ctx, kind, endpoint, max_size):
    sock = ctx.socket(kind)
    # LINGER 0: on exit, drop messages in flight; the clients will resend them.
    sock.setsockopt(zmq.LINGER, 0)
    # A frame over max_size makes libzmq drop that peer's connection, so one
    # peer cannot make the broker buffer gigabytes. The others are unaffected.
    sock.setsockopt(zmq.MAXMSGSIZE, max_size)
    # libzmq quietly wraps a TCP port over 65535 (99999 becomes 34463): refuse it.
    port = endpoint.rpartition(":")[2]
    if endpoint.startswith("tcp://") and port.isdigit() and int(port) > 65535:
        sys.exit(f"msgqueue.py: cannot bind {endpoint}: port is over 65535")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        sys.exit(f"msgqueue.py: cannot bind {endpoint}: {zmq.strerror(err.errno)}")
    return sock


def stop_proxy_when_a_server_leaves(monitor, control):
    """Thread: tell the proxy to return each time a server disconnects, so the
    main loop can check whether any server is left before running it again."""
    while recv_monitor_message(monitor)["event"] != zmq.EVENT_MONITOR_STOPPED:
        control.send(b"TERMINATE")


def run_proxy(ctx, frontend, backend):
    control = ctx.socket(zmq.PAIR)
    control.bind(CONTROL_ENDPOINT)
    watcher_end = ctx.socket(zmq.PAIR)
    watcher_end.connect(CONTROL_ENDPOINT)
    monitor = backend.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_MONITOR_STOPPED)
    watcher = threading.Thread(
        target=stop_proxy_when_a_server_leaves, args=(monitor, watcher_end), daemon=True
    )
    try:
        watcher.start()
        say(
            f"python (pid={PID}): broker up, clients on {frontend.LAST_ENDPOINT.decode()},"
            f" servers on {backend.LAST_ENDPOINT.decode()}"
        )
        while True:
            backend.poll(None, zmq.POLLOUT)  # blocks until some server is connected
            zmq.proxy_steerable(frontend, backend, None, control)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        # End the watcher before its sockets are closed under it.
        backend.disable_monitor()
        if watcher.ident:
            watcher.join()


def main():
    parser = argparse.ArgumentParser(description="ROUTER/DEALER request-reply broker.")
    parser.add_argument(
        "--frontend",
        default=FRONTEND_ENDPOINT,
        metavar="EP",
        help=f"endpoint the clients connect to (default {FRONTEND_ENDPOINT})",
    )
    parser.add_argument(
        "--backend",
        default=BACKEND_ENDPOINT,
        metavar="EP",
        help=f"endpoint the servers connect to (default {BACKEND_ENDPOINT})",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=MAX_SIZE,
        metavar="BYTES",
        help=f"drop a peer that sends a bigger frame (default {MAX_SIZE})",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="accepted for symmetry; the broker prints no per-request lines",
    )
    args = parser.parse_args()
    if args.max_size < 1:
        parser.error("--max-size must be at least 1")

    # The proxy runs in C; a signal makes it return to Python, where Ctrl-C
    # raises KeyboardInterrupt. SIGTERM is made to do the same, and so is
    # SIGINT, which a shell leaves ignored for a command started with "&".
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ctx = zmq.Context()
    try:
        frontend = bind_socket(ctx, zmq.ROUTER, args.frontend, args.max_size)
        # Clients name themselves; a client that reconnects before its old
        # connection was noticed dead takes its name over instead of being refused.
        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)
        backend = bind_socket(ctx, zmq.DEALER, args.backend, args.max_size)
        run_proxy(ctx, frontend, backend)
    except KeyboardInterrupt:
        say(f"python (pid={PID}): stopped")
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
