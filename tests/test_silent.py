"""Silent peers (CONTRACT.md behaviour 9): a process frozen with SIGSTOP (Ctrl-Z, a
closed laptop) keeps its TCP connections open and answers nothing. Heartbeats
(a ping each second, dropped after 3 s of silence) must cut it out, so that it
costs the others one detection delay, and it must rejoin by itself on SIGCONT.

Counted, never timed: a fault may cost each client a bounded number of resends
while it is being detected, and none once it has been; the thawed peer must get
work again; nothing is lost, nothing answered twice, no client sees another's data.
"""

import re
import signal
import time
from pathlib import Path

import pytest
from conftest import (
    DIGEST_RE,
    ECHO_RE,
    OWNER_RE,
    RESEND_RE,
    SERVER_GOT_RE,
    WAIT,
    check_echo_client,
    check_sha_client,
    start_broker,
    start_rep,
    start_worker,
)

SILENT_S, PING_S = 3, 1  # the scripts' heartbeat settings
STALL_S = 2  # over a ping and a 1 s timeout, under a ping's wait of 3 s
TIMEOUT = 1  # the clients' --timeout here
# While a silent peer is not yet detected, each request dealt to it costs one
# --timeout; a client can lose at most this many before the peer is dropped.
RESENDS_WHILE_DETECTING = (SILENT_S + PING_S) // TIMEOUT + 2


def resends(clients):
    return [len(c.matches(RESEND_RE)) for c in clients]


def echoes(clients, regex=ECHO_RE):
    return [len(c.matches(regex)) for c in clients]


def start_clients(spawn, fronts, n, count, program="mreq.py"):
    connect = ["--connect", ",".join(fronts)]
    args = ["--count", count, "--interval", 0.02, "--timeout", TIMEOUT]
    return [spawn(program, *connect, *args) for _ in range(n)]


def check_detected_then_unharmed(clients, more=15, regex=ECHO_RE):
    """The fault has been detected: each client makes `more` round trips, with at
    most one resend (a request already dealt to the silent peer), then `more`
    again with none at all."""
    for _ in range(2):
        before, done = resends(clients), echoes(clients, regex)
        for client, n in zip(clients, done):
            client.wait_for(regex, count=n + more)
        grown = [a - b for a, b in zip(resends(clients), before)]
        assert all(g <= 1 for g in grown), grown
    assert grown == [0] * len(clients), "a client still loses requests to the silent peer"


def tcp_states(pid):
    """The states of a process's TCP connections (hex codes of /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    states = []
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            states.append(fields[3])
    return states


def wait_until_peer_hung_up(proc):
    """Wait until some peer has closed its connection to the (frozen) process: the
    kernel holds that connection in CLOSE_WAIT, as the process cannot read."""
    deadline = time.monotonic() + WAIT
    while "08" not in tcp_states(proc.pid):  # 08: CLOSE_WAIT
        assert time.monotonic() < deadline, f"nobody dropped the frozen {proc.name}"
        time.sleep(0.05)  # a kernel table has no line to wait for


def test_frozen_server_is_dropped_then_rejoins_when_thawed(spawn):
    broker, front, back = start_broker(spawn)
    frozen = start_worker(spawn, back)
    others = [start_worker(spawn, back, args=["--quiet"]) for _ in range(2)]
    clients = start_clients(spawn, [front], 4, 200)
    for client in clients:
        client.wait_for(ECHO_RE, count=5)

    frozen.send(signal.SIGSTOP)
    broker.wait_for("server left, 2 connected now")  # the heartbeat noticed
    assert all(r <= RESENDS_WHILE_DETECTING for r in resends(clients)), resends(clients)
    check_detected_then_unharmed(clients)

    frozen.send(signal.SIGCONT)
    frozen.wait_for(f"lost broker at {re.escape(back)}, reconnecting")
    frozen.wait_for(f"connected to broker at {re.escape(back)}$", count=2)
    broker.wait_for("server connected, 3 connected now")
    (newcomer,) = start_clients(spawn, [front], 1, 30)
    check_echo_client(newcomer, 30)
    served = [OWNER_RE.search(m.group(1)) for m in frozen.matches(SERVER_GOT_RE)]
    assert str(newcomer.pid) in {m.group(1) for m in served if m}, "it gets work again"
    for client in clients:
        check_echo_client(client, 200)  # its stale replies reached no one
    for server in [frozen, *others]:
        server.stop()


def test_frozen_broker_of_two_is_dropped_and_everyone_resumes_through_both(spawn):
    broker_a, front_a, back_a = start_broker(spawn)
    _, front_b, back_b = start_broker(spawn)
    workers = [start_worker(spawn, back_a, back_b, args=["--quiet"]) for _ in range(2)]
    clients = start_clients(spawn, [front_a, front_b], 4, 250)
    for client in clients:
        client.wait_for(ECHO_RE, count=5)

    broker_a.send(signal.SIGSTOP)
    for worker in workers:
        worker.wait_for(f"lost broker at {re.escape(back_a)}, reconnecting")
    assert all(r <= RESENDS_WHILE_DETECTING for r in resends(clients)), resends(clients)
    check_detected_then_unharmed(clients)

    broker_a.send(signal.SIGCONT)
    for worker in workers:
        worker.wait_for(f"connected to broker at {re.escape(back_a)}$", count=2)
    broker_a.wait_for("server connected, 2 connected now")
    for client in clients:
        check_echo_client(client, 250)


def test_frozen_only_broker_clients_wait_then_resume(spawn):
    broker, front, back = start_broker(spawn)
    worker = start_worker(spawn, back, args=["--quiet"])
    clients = start_clients(spawn, [front], 3, 40)
    for client in clients:
        client.wait_for(ECHO_RE, count=5)
    broker.send(signal.SIGSTOP)
    worker.wait_for(f"lost broker at {re.escape(back)}, reconnecting")
    for client in clients:  # waiting, and saying so, as for a dead broker
        client.wait_for(r"no broker reachable for [\d.]+ s, resending")
    paused = echoes(clients)
    for client, n in zip(clients, resends(clients)):
        client.wait_for(RESEND_RE, count=n + 1)
    assert echoes(clients) == paused
    broker.send(signal.SIGCONT)
    worker.wait_for(f"connected to broker at {re.escape(back)}$", count=2)
    for client in clients:
        check_echo_client(client, 40)


def test_frozen_client_reconnects_under_its_name_and_gets_its_own_reply(spawn):
    broker, front, back = start_broker(spawn)
    start_worker(spawn, back, args=["--quiet"])
    frozen, other = start_clients(spawn, [front], 2, 30)
    frozen.wait_for(ECHO_RE, count=5)
    frozen.send(signal.SIGSTOP)
    other.wait_for(ECHO_RE, count=10)
    time.sleep(SILENT_S + PING_S)  # frozen past its own heartbeat: stale when it thaws
    frozen.send(signal.SIGCONT)
    for client in (frozen, other):
        check_echo_client(client, 30)


def test_part1_frozen_client_is_served_when_thawed(spawn):
    """The servers ping nobody (tests/test_hostile_clients.py says why), so a
    frozen client's connection stays open; thawed, the client finds it stale by
    its own heartbeat, reconnects under its name (HANDOVER), and carries on."""
    rep, endpoint = start_rep(spawn, "--quiet")
    (frozen,) = start_clients(spawn, [endpoint], 1, 60, program="c.py")
    frozen.wait_for(DIGEST_RE, count=5)
    frozen.send(signal.SIGSTOP)
    time.sleep(SILENT_S + PING_S)  # frozen past its own heartbeat
    frozen.send(signal.SIGCONT)
    check_sha_client(frozen, 60)


def test_part1_client_over_two_servers_drops_the_frozen_one(spawn):
    frozen, endpoint_a = start_rep(spawn)
    rep_b, endpoint_b = start_rep(spawn, "--quiet")
    (client,) = start_clients(spawn, [endpoint_a, endpoint_b], 1, 200, program="c.py")
    frozen.wait_for(SERVER_GOT_RE, count=3)
    frozen.send(signal.SIGSTOP)
    wait_until_peer_hung_up(frozen)  # the client dropped it
    assert len(client.matches(RESEND_RE)) <= RESENDS_WHILE_DETECTING
    check_detected_then_unharmed([client], more=20, regex=DIGEST_RE)
    frozen.send(signal.SIGCONT)
    check_sha_client(client, 200)


@pytest.mark.parametrize("script", ["c.py", "mreq.py"])
def test_peer_stalled_for_less_than_the_heartbeat_timeout_is_kept(spawn, script):
    # A peer that stops answering for 2 s (a loaded machine, a long pause) is not
    # silent yet: a ping sent in the stall waits 1 to 2 s for its answer, under
    # the 3 s timeout. Nobody drops anybody, and no request is resent.
    if script == "c.py":
        stalled, endpoint = start_rep(spawn, "--quiet")
        worker, regex = None, DIGEST_RE
    else:
        stalled, endpoint, back = start_broker(spawn)
        worker, regex = start_worker(spawn, back, args=["--quiet"]), ECHO_RE
    client = spawn(script, "--connect", endpoint, "--count", 40, "--interval", 0.02,
                   "--timeout", 5)  # fmt: skip
    client.wait_for(regex, count=5)
    stalled.send(signal.SIGSTOP)
    time.sleep(STALL_S)  # the length of the fault, not a wait for something to happen
    stalled.send(signal.SIGCONT)
    (check_sha_client if script == "c.py" else check_echo_client)(client, 40)
    assert not client.matches(RESEND_RE)
    if worker:
        assert not [line for line in worker.lines if "lost broker" in line]


def test_slow_server_is_not_taken_for_a_silent_one(spawn):
    broker, front, back = start_broker(spawn)
    start_worker(spawn, back, args=["--work", SILENT_S + PING_S + 0.5])
    client = spawn("mreq.py", "--connect", front, "--count", 1, "--timeout", 20)
    check_echo_client(client, 1)
    assert not client.matches(RESEND_RE)
    assert not [line for line in broker.lines if "server left" in line]
