"""The broker's own promises: it shows servers come and go, counts only real
ZeroMQ servers, never spins (CONTRACT.md behaviour 11), and holds as many
connections as the OS allows. Also mrep.py pointed at the wrong port."""

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time

import zmq
from conftest import (
    RESEND_RE,
    WAIT,
    check_echo_client,
    cpu_seconds,
    start_broker,
    start_worker,
)
from test_broker_exact import hang_up, open_sockets, wait_until

SERVERS_NOW_RE = re.compile(r"server (connected|left), (\d+) connected now$")


@contextlib.contextmanager
def cpu_load(n=2):
    """Busy processes on every core, as on a loaded machine; always killed."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_broker_never_spins_after_its_last_server_dies_stress(spawn):
    # Race: the proxy restarted while a dead server's connection still looked
    # writable, and then spun at 100% CPU until a server came back.
    broker, front, back = start_broker(spawn)
    clients = [
        spawn("mreq.py", "--connect", front, "--interval", 0, "--timeout", 0.3, "--quiet")
        for _ in range(3)
    ]
    with cpu_load():
        for round_ in range(10):
            workers = [spawn("mrep.py", "--connect", back, "--quiet") for _ in range(3)]
            for worker in workers:  # started together, to keep the rounds short
                worker.wait_for("connected to broker")
            resends = [len(c.matches(RESEND_RE)) for c in clients]
            for worker in workers:
                worker.send(9)
            for worker in workers:
                worker.wait()
            # Requests wait now. Measure the broker over two of a client's resends.
            clients[0].wait_for(RESEND_RE, count=resends[0] + 1)
            cpu_at, wall_at = cpu_seconds(broker.pid), time.monotonic()
            clients[0].wait_for(RESEND_RE, count=resends[0] + 3)
            cpu, wall = cpu_seconds(broker.pid) - cpu_at, time.monotonic() - wall_at
            print(f"round {round_}: broker CPU {cpu:.2f} s in {wall:.2f} s without servers")
            # Idle, it wakes ten times a second: about 0.01 s in 0.6 s. Spinning even
            # a quarter of the time, on a loaded machine, costs over 0.1 s.
            assert cpu < wall / 10, "the broker spins while requests wait"


def test_broker_counts_only_real_servers(spawn, zctx):
    broker, front, back = start_broker(spawn)
    host, port = back.removeprefix("tcp://").rsplit(":", 1)
    sockets_before = open_sockets(broker.pid)
    # Not ZeroMQ at all: a port scan, and an HTTP request. Each is hung up, and
    # waited on until the broker has closed it too, so that the broker's events
    # for it come before the server's. (With a junk connection still open when the
    # server's handshake succeeds, libzmq cannot say which one succeeded, and the
    # broker rightly prints a range, "0 to 1 connected now", not an exact count.)
    hang_up(socket.create_connection((host, int(port)), timeout=WAIT))
    http = socket.create_connection((host, int(port)), timeout=WAIT)
    http.sendall(b"GET / HTTP/1.0\r\n\r\n")
    hang_up(http)
    # ZeroMQ, but the wrong kind of socket for a DEALER: its handshake fails.
    wrong = zctx.socket(zmq.PUSH)
    watch = wrong.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    wrong.connect(back)
    assert watch.poll(WAIT * 1000), "the wrong kind of socket was never cut off"
    wrong.close(linger=0)
    wait_until(lambda: open_sockets(broker.pid) == sockets_before, "the broker closed the junk")
    worker = start_worker(spawn, back)
    check_echo_client(spawn("mreq.py", "--connect", front, "--count", 2, "--interval", 0), 2)
    worker.stop()
    broker.wait_for("no server connected, requests wait")
    counts = [
        (m.group(1), m.group(2)) for m in broker.matches(re.compile(".*" + SERVERS_NOW_RE.pattern))
    ]
    assert counts == [("connected", "1"), ("left", "0")]


def test_mrep_on_the_wrong_port_says_so_once_and_backs_off(spawn, zctx):
    _, front, _ = start_broker(spawn)  # the clients' port: a ROUTER, not a broker's back end
    worker = spawn("mrep.py", "--connect", front)
    worker.wait_for("no ZeroMQ handshake with")
    cpu_at, wall_at = cpu_seconds(worker.pid), time.monotonic()
    # Watch a peer of its own kind refuse it too: a REP server is no broker either.
    rep = zctx.socket(zmq.REP)
    monitor = rep.get_monitor_socket(zmq.EVENT_ACCEPTED)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    other = spawn("mrep.py", "--connect", f"tcp://127.0.0.1:{port}")
    tries = []
    for _ in range(4):  # it comes back, again and again...
        assert monitor.poll(20_000)
        monitor.recv_multipart()
        tries.append(time.monotonic())
    cpu, wall = cpu_seconds(worker.pid) - cpu_at, time.monotonic() - wall_at
    print(f"mrep.py on the wrong port: {cpu:.2f} s CPU in {wall:.2f} s")
    assert cpu < wall / 2, "it retries in a tight loop"
    # ...each time after a longer pause: 0.1 s, then 0.2, then 0.4 (at least half that here).
    assert tries[3] - tries[0] > 0.35, "it does not back off"
    for proc in (worker, other):
        proc.stop()
    for proc in (worker, other):  # ...and said so once, not once per try
        assert len([line for line in proc.lines if "no ZeroMQ handshake" in line]) == 1, proc.lines
        assert not [line for line in proc.lines if "lost broker" in line]


def test_mrep_kept_busy_by_one_broker_still_sees_another_come(spawn, zctx):
    # mrep.py takes a waiting request before it looks at its monitor. Under a flood
    # that never lets it wait, it must still follow its brokers (every POLL_MS).
    busy = zctx.socket(zmq.DEALER)  # a broker's back end that keeps it busy
    busy_end = f"tcp://127.0.0.1:{busy.bind_to_random_port('tcp://127.0.0.1')}"
    with socket.socket() as probe:  # a free port for the broker that comes later
        probe.bind(("127.0.0.1", 0))
        late_end = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    worker = spawn("mrep.py", "--connect", busy_end, "--connect", late_end, "--quiet",
                   "--work", "0.002")  # fmt: skip
    worker.wait_for(f"connected to broker at {re.escape(busy_end)}$")
    replies, flooding = [], threading.Event()
    flooding.set()

    def flood():  # 1000 requests queued at it (2 s of its work), each reply refilled
        for _ in range(1000):
            busy.send_multipart([b"", b"keep busy"])
        while flooding.is_set():
            if busy.poll(100):
                replies.append(busy.recv_multipart())
                busy.send_multipart([b"", b"keep busy"])

    pump = threading.Thread(target=flood)
    pump.start()
    try:
        wait_until(lambda: len(replies) >= 50, "it serves the flood")
        late = zctx.socket(zmq.DEALER)
        late.bind(late_end)
        worker.wait_for(f"connected to broker at {re.escape(late_end)}$")
        served = len(replies)
        wait_until(lambda: len(replies) > served, "it serves on")  # the flood never stopped
    finally:
        flooding.clear()
        pump.join()
