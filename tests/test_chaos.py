"""Chaos: 12 clients as fast as they can go, 3 servers, for about 12 seconds, while
a loop SIGKILLs a random server and starts a new one every second, and restarts
the broker once. Every client must finish its --count with every reply its own."""

import random
import signal
import time

from conftest import ECHO_RE, RESEND_RE, check_echo_client, start_broker, start_worker, worst_gap

CLIENTS = 12
SERVERS = 3
COUNT = 240  # per client: about 12 s of work at --work 0.01 on three servers
CHAOS_SECONDS = 12
TIMEOUT = 0.5
RETRIES = 10  # resends of one request: far more than one fault a second can cost


def test_chaos_loses_nothing(spawn, capsys):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    broker, front, back = start_broker(spawn)
    server_args = ["--quiet", "--work", 0.01]
    servers = [start_worker(spawn, back, args=server_args) for _ in range(SERVERS)]
    # --retries: a client stuck for good gives up and fails the test at once, saying
    # so, instead of being seen only as a test that never ends.
    args = ["--interval", 0, "--timeout", TIMEOUT, "--count", COUNT, "--retries", RETRIES]
    clients = [spawn("mreq.py", "--connect", front, *args) for _ in range(CLIENTS)]

    kills = broker_restarts = 0
    started = time.monotonic()
    while time.monotonic() - started < CHAOS_SECONDS and any(
        c.popen.poll() is None for c in clients
    ):
        time.sleep(1)  # the fault schedule, not a wait for readiness
        victim = servers.pop(rng.randrange(len(servers)))
        victim.send(signal.SIGKILL)
        victim.wait()
        kills += 1
        if broker_restarts == 0 and time.monotonic() - started > CHAOS_SECONDS / 2:
            broker.send(signal.SIGKILL)
            broker.wait()
            broker, _, _ = start_broker(spawn, frontend=front, backend=back)
            broker_restarts += 1
        servers.append(start_worker(spawn, back, args=server_args))
    chaos_time = time.monotonic() - started

    for client in clients:
        check_echo_client(client, COUNT)
    resends = sum(len(c.matches(RESEND_RE)) for c in clients)
    stall = max(worst_gap(c, ECHO_RE) for c in clients)
    with capsys.disabled():
        print(
            f"\nchaos (seed {seed}): {CLIENTS * COUNT} requests by {CLIENTS} clients, all answered"
            f" and verified; {kills} servers killed and {broker_restarts} broker restart in"
            f" {chaos_time:.1f} s; {resends} resends; worst stall {stall:.2f} s"
            f" (--timeout {TIMEOUT})"
        )
    assert kills >= 5, "the clients outlived several faults"
    assert broker_restarts == 1
