"""Ctrl-C and SIGTERM stop every script at once with exit status 0, one goodbye
line and no traceback (CONTRACT.md behaviour 10): also when started with SIGINT
ignored (as a shell does for `cmd &`), for two signals in a row, for a signal
that lands on another thread, and where a signal cannot interrupt a blocking
call (tests/no_interrupt.py makes Linux behave so, as Windows does)."""

import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import zmq
from conftest import ANY_PORT, ROOT, WAIT, start_broker, start_worker

NOBODY = "tcp://127.0.0.1:9"  # connectors need no peer to start: nobody listens here
STARTS = {
    "rep.py": (["--bind", ANY_PORT], "serving sha1 on", "stopped"),
    "msgqueue.py": (["--frontend", ANY_PORT, "--backend", ANY_PORT], "broker up", "stopped"),
    "mrep.py": (["--connect", NOBODY], "echo server connecting", "stopped"),
    # --timeout 60: a client that only noticed the signal after its timeout fails the test.
    "c.py": (["--connect", NOBODY, "--timeout", 60], "client connecting", "interrupted, exiting"),
    "mreq.py": (
        ["--connect", NOBODY, "--timeout", 60],
        "client connecting",
        "interrupted, exiting",
    ),
}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def no_interrupt(script):
    return [sys.executable, str(ROOT / "tests" / "no_interrupt.py"), str(ROOT / script)]


def start(spawn, script, **options):
    args, ready, _ = STARTS[script]
    proc = spawn(script, *args, **options)
    proc.wait_for(ready)
    return proc


def check_stopped_cleanly(proc):
    assert proc.wait() == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.lines[-1] == f"python (pid={proc.pid}): {STARTS[proc.name][2]}"
    goodbyes = [line for line in proc.lines if line.endswith(STARTS[proc.name][2])]
    assert len(goodbyes) == 1


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["plain", "started-with-&"])
@pytest.mark.parametrize("signum", SIGNALS.values(), ids=SIGNALS.keys())
@pytest.mark.parametrize("script", sorted(STARTS))
def test_signal_stops_script_cleanly(spawn, script, signum, ignore_sigint):
    proc = start(spawn, script, ignore_sigint=ignore_sigint)
    proc.send(signum)
    check_stopped_cleanly(proc)


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGTERM), (signal.SIGTERM,) * 5],
    ids=["INT-INT", "TERM-TERM", "TERMx5"],
)
@pytest.mark.parametrize("script", sorted(STARTS))
def test_signals_in_a_row_still_exit_cleanly(spawn, script, signals):
    proc = start(spawn, script)
    for signum in signals:
        proc.send(signum)
    check_stopped_cleanly(proc)


def wait_until_waiting(proc):
    """Until the process's main thread sleeps in poll(), where all five scripts wait
    for events: a signal that came before would be seen before any wait began."""
    wchan = Path(f"/proc/{proc.pid}/wchan")  # the kernel function it sleeps in
    deadline = time.monotonic() + WAIT
    while "poll" not in wchan.read_text():
        assert time.monotonic() < deadline, f"{proc.name} never waits in poll()"
        time.sleep(0.01)  # a kernel state has no line to wait for


@pytest.mark.parametrize("script", sorted(STARTS))
def test_signal_stops_script_where_signals_do_not_interrupt(spawn, script):
    proc = start(spawn, script, program=no_interrupt(script))
    wait_until_waiting(proc)
    proc.send(signal.SIGINT)
    check_stopped_cleanly(proc)


@pytest.mark.parametrize("script", ["c.py", "mreq.py"])
def test_client_waiting_for_a_reply_stops_where_signals_do_not_interrupt(spawn, zctx, script):
    silent = zctx.socket(zmq.ROUTER)  # takes the request and never answers
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    args = ["--connect", f"tcp://127.0.0.1:{port}", "--timeout", 60]
    proc = spawn(script, *args, program=no_interrupt(script))
    assert silent.poll(20_000), "the client sent its request"
    wait_until_waiting(proc)
    proc.send(signal.SIGTERM)
    check_stopped_cleanly(proc)


def threads_taking(pid, signum):
    """The threads of a process, other than its main one, that do not block signum.
    (libzmq's own threads block every signal.)"""
    found = []
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        try:
            if tid != pid and not blocks(pid, tid, signum):
                found.append(tid)
        except FileNotFoundError:
            pass  # it ended since the listing: the proxy's thread lives one turn
    return found


def blocks(pid, tid, signum):
    """Whether a thread blocks signum, from its signal mask (SigBlk) in /proc."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return bool(int(status.split("SigBlk:")[1].split()[0], 16) & (1 << (signum - 1)))


def signal_a_thread_taking(pid, signum):
    """tgkill a thread other than the main one that takes signum. The broker's proxy
    thread lives one turn (POLL_MS): it may end between the lookup and the signal
    (ESRCH), or block every signal as it ends (the signal is lost with it): then the
    signal goes to the next turn's thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for tid in threads_taking(pid, signum):
            if libc.tgkill(pid, tid, signum) != 0:
                continue  # it ended first
            try:
                if not blocks(pid, tid, signum):
                    return  # it takes the signal: the kernel delivers it
            except FileNotFoundError:
                return  # it took the signal and ended
        time.sleep(0.01)  # between two turns: no proxy thread; it has no line to wait for
    raise AssertionError("no thread but the main one ever took the signal")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tgkill is Linux's")
def test_signal_landing_on_the_proxy_thread_stops_the_broker(spawn):
    broker, _, back = start_broker(spawn)
    start_worker(spawn, back)
    broker.wait_for("server connected")  # the proxy thread starts now
    signal_a_thread_taking(broker.pid, signal.SIGTERM)
    check_stopped_cleanly(broker)


def test_broker_stops_at_any_moment_stress(spawn):
    # Signals right after startup, while the proxy runs, and in bursts: each round
    # must end with exit 0 and one goodbye (two SIGTERMs once aborted libzmq).
    for round_ in range(12):
        broker, _, back = start_broker(spawn)
        if round_ % 2:
            start_worker(spawn, back)
            broker.wait_for("server connected")
        for _ in range(1 + round_ % 3):
            broker.send(signal.SIGTERM)
        check_stopped_cleanly(broker)


def send_until_full(pile, payload):
    """Send requests until the broker takes none for a second; how many went."""
    for sent in range(100_000):
        if not pile.poll(1000, zmq.POLLOUT):
            return sent
        pile.send_multipart([b"", payload], zmq.NOBLOCK)
    raise AssertionError(f"{sent} requests went in: the broker never filled up")


def test_broker_stops_while_its_only_server_reads_nothing_and_requests_pile_up(spawn, zctx):
    # libzmq's proxy forwards requests in bursts of up to 1000, after one check
    # that the back end has room (proxy.cpp, v4.3.5). The queue towards a server
    # holds 1000 (the send high-water mark), and room in it comes back 500 at a
    # time, as requests leave for the kernel and the server (pipe.cpp). So a
    # burst that starts when 500 came back, with more than 500 waiting, fills it
    # midway; a send with no timeout then waits until the server reads again, and
    # a server that never does leaves the broker unable to stop. So does LINGER
    # on the way out: those 500 requests would wait for good to be delivered.
    broker, front, back = start_broker(spawn)
    pile = zctx.socket(zmq.DEALER)  # a client that need not wait for replies
    pile.setsockopt(zmq.SNDHWM, 10)  # so it sees at once when the broker takes more
    pile.connect(front)
    # Requests big enough that the kernel holds fewer than 200 of them on the
    # way to the server: only the server's reads give room back, not the kernel.
    kernel_send_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    payload = b"x" * max(16 * 1024, kernel_send_max // 200)
    assert send_until_full(pile, payload) > 1000  # no server yet: they wait in the broker

    server = zctx.socket(zmq.DEALER)  # a server that reads only when told to
    server.setsockopt(zmq.RCVHWM, 10)
    server.setsockopt(zmq.RCVBUF, 64 * 1024)
    # Its pings keep the broker from dropping it; it never drops the broker.
    server.setsockopt(zmq.HEARTBEAT_IVL, 1000)
    server.setsockopt(zmq.HEARTBEAT_TIMEOUT, 600_000)
    server.connect(back)
    broker.wait_for("server connected, 1 connected now")
    # The first burst, 1000 requests, fills the way to the server exactly.
    assert pile.poll(WAIT * 1000, zmq.POLLOUT), "the broker took no request"
    send_until_full(pile, payload)
    # The server reads 500: room for 500 comes back, and the next burst of 1000 fills it.
    for _ in range(500):
        assert server.poll(WAIT * 1000), "the server got no request"
        server.recv_multipart()
    assert pile.poll(WAIT * 1000, zmq.POLLOUT), "the broker took no more requests"
    broker.send(signal.SIGTERM)
    check_stopped_cleanly(broker)


@pytest.mark.parametrize("script", sorted(STARTS))
def test_script_stops_cleanly_with_warnings_as_errors(spawn, script):
    """`python -X dev -W error`: no socket left unclosed (a ResourceWarning), no
    warning of any kind, and no hang on the way out (the broker hung for good)."""
    strict = [sys.executable, "-X", "dev", "-W", "error", str(ROOT / script)]
    proc = start(spawn, script, program=strict)
    proc.send(signal.SIGINT)
    check_stopped_cleanly(proc)


@pytest.mark.parametrize("script", ["rep.py", "mreq.py"])
def test_more_signals_while_a_script_exits_do_not_kill_it(spawn, script):
    """Ctrl-C, then Ctrl-C again and again while it says goodbye and Python exits:
    CPython puts the default handlers back as it finalizes, so a handler that only
    took a note let one of these kill the script (status -2, 5 runs of 5)."""
    proc = start(spawn, script)
    proc.send(signal.SIGINT)
    proc.wait_for(STARTS[script][2])
    while proc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send(signal.SIGINT)
        time.sleep(0.002)  # as fast as a finger on a key repeats, and faster
    check_stopped_cleanly(proc)
