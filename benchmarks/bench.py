#!/usr/bin/env python3
"""Benchmark: what the broker costs, how load balancing scales, how long fail-over stalls.

It starts the real scripts as processes (with --quiet, except where a figure
says otherwise) and drives them with a load generator of its own: K REQ sockets
in this process, each always with one request in flight. Figures are reported
as ratios where the machine's speed would otherwise decide the number:

What a figure compares is measured in alternating rounds (A, B, B, A, ...
where the order matters), and the medians of the rounds are reported, so that
a machine that slows down or speeds up midway weighs on both sides alike.

1. Round-trip latency, direct (REQ to rep.py) against brokered (REQ to
   msgqueue.py to mrep.py): median, p99, and brokered/direct.
2. Broker cost, 8 clients and 2 servers: msgqueue.py (zmq.proxy) against a
   reference broker written here as the classic Python poll loop (the zguide's
   rrbroker), both running. Requests/s for each and their ratio, and the broker
   process's own CPU time per request, read from /proc, and its ratio.
3. Scaling: servers with --work 0.02, 16 clients, 1, 2, 4 and 8 servers;
   requests/s and efficiency against perfect scaling (n / 0.02 requests/s).
4. Fail-over stall: 8 mreq.py clients through 3 servers with --work 0.05;
   SIGKILL one server, and report the worst extra latency a client saw
   against its --timeout.
5. Silent faults: 4 mreq.py (--interval 0.05 --timeout 1) through 3 servers;
   SIGSTOP one server, or one of two brokers, for 12 s. All clients' replies/s
   before and during the freeze, and the time until every 1 s window from
   then on has 90% of the rate before.
6. Connections: 1000 and 4000 REQ sockets connect at once to one broker (a
   class after a restart) and send a request each: how many are answered, and
   when the last one is; then each sends one request a second for 10 s:
   replies/s, p99 and the broker's memory (RSS).
7. One slow server: 16 mreq.py clients through 4 servers with --work 0.01,
   then with one of the four at --work 0.5: replies/s and resends. DEALER's
   round-robin is blind to load, and this shows what that costs.
8. Client overhead: c.py --interval 0 --quiet against a minimal 10-line pyzmq
   REQ loop on the same rep.py (each pinned to a core of its own): time and
   CPU per request, and c.py / minimal.
9. No slower: each server against a bare REP loop doing the same work (rep.py:
   bind, recv, sha1, send; mrep.py: connect, recv, send it back), once with
   --quiet against a loop that prints nothing, once printing against a loop
   that prints the same two lines per request. One DEALER here keeps 8
   requests queued at the server (mrep.py's is bound here, as a broker's back
   end is); servers on one core, this load on the other; stdout to a file.
   Replies/s, script / bare, and the server's CPU per request.
10. --secret: a msgqueue.py and two mrep.py with --secret PHRASE (CURVE, keys from
   the phrase) against the same without it, both running, in alternating rounds
   (without, with, without, with, ...): brokered requests/s with 8 clients, the
   round trip with one, and with/without. Clients here, CURVE clients on the
   --secret side (the broker's public key from msgqueue.py's own curve_keys).

REQREP_SECRET is taken out of the environment first: the load generator here
speaks CURVE only where figure 10 asks it to.

    python benchmarks/bench.py            # about a minute; writes benchmarks/results.json
    python benchmarks/bench.py --quick    # a few seconds per figure, for a smoke test
    python benchmarks/bench.py --only secret [--quick]   # figure 10 alone; no results file

A PNG of requests/s against servers is written too where matplotlib is
installed (pip install '.[bench]').
"""

import argparse
import heapq
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from harness import (  # noqa: E402  (the process harness is shared with the tests)
    ANY_PORT,
    WAIT,
    cpu_seconds,
    curve_keys,
    processes,
    start_broker,
    start_rep,
    start_worker,
    without_secret,
)

STALL_TIMEOUT = 1.0  # the clients' --timeout in the fail-over and silent-fault figures
TARGETS = {
    "latency_ratio_max": 2.2,
    "broker_cpu_ratio_max": 0.65,
    "efficiency_at_8_min": 0.90,
    "stall_over_timeout_max": 0.2,
    "client_overhead_ratio_max": 1.15,
    "server_ratio_min": 0.95,  # replies/s of each server against its bare loop
    # Detection takes up to a ping interval (1 s) plus the heartbeat timeout (3 s);
    # then a request dealt to the silent peer costs one --timeout.
    "silent_back_within_s": 1 + 3 + STALL_TIMEOUT + 0.5,
    "silent_rate_during_min": 0.9,
    "secret_requests_ratio_min": 0.5,  # requests/s with --secret against without
    "secret_round_trip_ratio_max": 1.5,  # round trip with --secret against without
}
SCALING_WORK = 0.02  # seconds of simulated work per request
SCALING_SERVERS = [1, 2, 4, 8]
PAYLOAD = b"benchmark payload"
ECHO_RE = re.compile(r" received the original data: ")
SECRET_PHRASE = "benchmark phrase"  # figure 10's --secret


def drive(ctx, endpoint, clients, *, seconds=None, requests=None, warmup=0.5, server_key=None):
    """Keep one request in flight on each of `clients` REQ sockets. After `warmup`
    seconds, record each round trip until `seconds` pass or `requests` complete.
    With `server_key` (a --secret broker's public key) each socket is a CURVE client.
    Returns (latencies, measured seconds)."""
    socks = []
    poller = zmq.Poller()
    for _ in range(clients):
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        if server_key:  # as the scripts' clients do: the server's key, a keypair of its own
            sock.curve_serverkey = server_key
            sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.connect(endpoint)
        poller.register(sock, zmq.POLLIN)
        socks.append(sock)
    sent_at = {}
    for sock in socks:
        sock.send(PAYLOAD)
        sent_at[sock] = time.perf_counter()
    latencies = []
    begin = time.perf_counter() + warmup
    end = begin + seconds if seconds else float("inf")
    while time.perf_counter() < end and (requests is None or len(latencies) < requests):
        for sock, _ in poller.poll(1000):
            sock.recv()
            now = time.perf_counter()
            if now >= begin:
                latencies.append(now - sent_at[sock])
            sock.send(PAYLOAD)
            sent_at[sock] = now
    measured = time.perf_counter() - begin
    for sock in socks:
        sock.close()
    return latencies, measured


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure_latency(ctx, spawn, requests, rounds):
    """Direct and brokered round trips, in alternating rounds; medians of rounds."""
    _, direct_ep = start_rep(spawn, "--quiet")
    _, front, back = start_broker(spawn)
    start_worker(spawn, back, args=["--quiet"])
    per_round = {"direct": [], "brokered": []}
    for _ in range(rounds):
        for name, endpoint in (("direct", direct_ep), ("brokered", front)):
            values, _ = drive(ctx, endpoint, 1, requests=requests // rounds, warmup=0.1)
            per_round[name].append((statistics.median(values), percentile(values, 0.99)))
    result = {"requests": requests, "rounds": rounds}
    for name, values in per_round.items():
        result[f"{name}_median_us"] = statistics.median(m for m, _ in values) * 1e6
        result[f"{name}_p99_us"] = statistics.median(p for _, p in values) * 1e6
    ratios = [b[0] / d[0] for d, b in zip(per_round["direct"], per_round["brokered"])]
    result["ratio_median"] = statistics.median(ratios)
    result["ratio_p99"] = result["brokered_p99_us"] / result["direct_p99_us"]
    return result


def reference_broker(frontend, backend):
    """The classic Python broker loop (zguide rrbroker): every message passes through Python."""
    ctx = zmq.Context()
    front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    front.bind(frontend)
    back.bind(backend)
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    print(
        f"python (pid={os.getpid()}): broker up, clients on {front.LAST_ENDPOINT.decode()},"
        f" servers on {back.LAST_ENDPOINT.decode()}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            ready = dict(poller.poll())
            if front in ready:
                back.send_multipart(front.recv_multipart())
            if back in ready:
                front.send_multipart(back.recv_multipart())
    except KeyboardInterrupt:
        ctx.destroy(linger=0)


def measure_broker_cost(ctx, spawn, seconds, rounds):
    """msgqueue.py against the Python loop, both running, driven in alternating rounds."""
    result = {"clients": 8, "servers": 2, "seconds": seconds, "rounds": rounds}
    brokers = {}
    for name in ("msgqueue", "reference"):
        if name == "msgqueue":
            broker, front, back = start_broker(spawn)
        else:
            broker = spawn(
                "benchmarks/bench.py", "--reference-broker", "--frontend", ANY_PORT,
                "--backend", ANY_PORT,
            )  # fmt: skip
            ready = broker.wait_for(
                r"broker up, clients on (tcp://\S+), servers on (tcp://[^\s,]+)"
            )
            front, back = ready.group(1), ready.group(2)
        for _ in range(2):
            start_worker(spawn, back, args=["--quiet"])
        brokers[name] = (broker, front)
    rates, cpus = {name: [] for name in brokers}, {name: [] for name in brokers}
    for _ in range(rounds):
        for name, (broker, front) in brokers.items():
            cpu_before = cpu_seconds(broker.pid)
            latencies, measured = drive(ctx, front, 8, seconds=seconds / rounds, warmup=0)
            cpu = cpu_seconds(broker.pid) - cpu_before
            rates[name].append(len(latencies) / measured)
            cpus[name].append(cpu / len(latencies) * 1e6)
    for name in brokers:
        result[f"{name}_requests_per_s"] = statistics.median(rates[name])
        result[f"{name}_cpu_us_per_request"] = statistics.median(cpus[name])
    result["requests_ratio"] = statistics.median(
        m / r for m, r in zip(rates["msgqueue"], rates["reference"])
    )
    result["cpu_ratio"] = statistics.median(
        m / r for m, r in zip(cpus["msgqueue"], cpus["reference"])
    )
    return result


def measure_secret_cost(ctx, spawn, requests, seconds, rounds):
    """A broker and 2 servers without --secret, and the same with it, both running;
    `rounds` rounds each, alternating: without, with, without, with, ... A round:
    8 clients for seconds / rounds (requests/s), then 1 client for requests / rounds
    round trips. Medians of the rounds, and of the ratios of each pair of rounds."""
    env = without_secret()
    systems = {}
    for name, secret in (("plain", []), ("secret", ["--secret", SECRET_PHRASE])):
        _, front, back = start_broker(spawn, *secret, env=env)
        for _ in range(2):  # start_worker, with this environment
            server = spawn("mrep.py", "--connect", back, "--quiet", *secret, env=env)
            server.wait_for(f"connected to broker at {re.escape(back)}$")
        key = curve_keys(SECRET_PHRASE)[0] if secret else None
        # Is it answering? Only if the key fits: CURVE and NULL peers never get a pipe.
        answered, _ = drive(ctx, front, 1, seconds=WAIT, requests=1, warmup=0, server_key=key)
        if not answered:
            raise RuntimeError(f"no reply through the broker {name} on {front} in {WAIT} s")
        systems[name] = (front, key)
    for front, key in systems.values():  # warm up both, so that round 1 is like the rest
        drive(ctx, front, 8, seconds=min(0.2, seconds / rounds), warmup=0, server_key=key)
    per_round = []
    for round_ in range(2 * rounds):
        name = ("plain", "secret")[round_ % 2]
        front, key = systems[name]
        # warmup: each drive's sockets connect anew, and the handshake stays out of it
        done, measured = drive(ctx, front, 8, seconds=seconds / rounds, warmup=0.1, server_key=key)
        trips, _ = drive(
            ctx, front, 1, seconds=WAIT, requests=requests // rounds, warmup=0.1, server_key=key
        )
        per_round.append(
            {
                "secret": name == "secret",
                "requests_per_s": len(done) / measured,
                "median_us": statistics.median(trips) * 1e6,
                "p99_us": percentile(trips, 0.99) * 1e6,
            }
        )
    result = {"clients": 8, "servers": 2, "requests": requests, "seconds": seconds}
    result.update(rounds=rounds, per_round=per_round)
    for name in systems:
        mine = [r for r in per_round if r["secret"] == (name == "secret")]
        for figure in ("requests_per_s", "median_us", "p99_us"):
            result[f"{name}_{figure}"] = statistics.median(r[figure] for r in mine)
    pairs = list(zip(per_round[0::2], per_round[1::2]))  # (without, with) of each round
    result["requests_ratio"] = statistics.median(
        s["requests_per_s"] / p["requests_per_s"] for p, s in pairs
    )
    result["round_trip_ratio"] = statistics.median(
        s["median_us"] / p["median_us"] for p, s in pairs
    )
    return result


def measure_scaling(ctx, spawn, seconds):
    points = []
    for n in SCALING_SERVERS:
        broker, front, back = start_broker(spawn)
        workers = [
            spawn("mrep.py", "--connect", back, "--quiet", "--work", SCALING_WORK) for _ in range(n)
        ]
        for worker in workers:
            worker.wait_for("connected to broker at")
        latencies, measured = drive(ctx, front, 16, seconds=seconds)
        rate = len(latencies) / measured
        ideal = n / SCALING_WORK
        points.append({"servers": n, "requests_per_s": rate, "efficiency": rate / ideal})
        for proc in [broker, *workers]:
            proc.reap()
    return {"work_s": SCALING_WORK, "clients": 16, "seconds": seconds, "points": points}


def reply_gaps(client):
    """Seconds between consecutive replies a client printed (line arrival times)."""
    times = client.arrivals(ECHO_RE)
    return [b - a for a, b in zip(times, times[1:])]


def measure_stall(spawn, settle_replies):
    _, front, back = start_broker(spawn)
    # The first server, the one killed, prints its lines: they tell which requests it
    # took and never answered, each of which some client must have resent.
    servers = [start_worker(spawn, back, args=["--work", 0.05])]
    servers += [start_worker(spawn, back, args=["--quiet", "--work", 0.05]) for _ in range(2)]
    args = ["--connect", front, "--interval", 0, "--timeout", STALL_TIMEOUT]
    clients = [spawn("mreq.py", *args) for _ in range(8)]
    for client in clients:
        client.wait_for(ECHO_RE, count=settle_replies)
    # Every server holds a request at all times here (8 clients, 3 servers, 50 ms each).
    servers[0].send(signal.SIGKILL)
    servers[0].wait()
    for client in clients:
        client.wait_for(ECHO_RE, count=3 * settle_replies)
    gaps = [gap for client in clients for gap in reply_gaps(client)]
    normal, worst = statistics.median(gaps), max(gaps)
    taken = [line for line in servers[0].lines if line.endswith("from client.")]
    answered = [line for line in servers[0].lines if "sending back" in line]
    return {
        "timeout_s": STALL_TIMEOUT,
        "normal_round_trip_s": normal,
        "worst_extra_latency_s": worst - normal,
        "over_timeout_s": worst - normal - STALL_TIMEOUT,
        "requests_resent": sum(1 for c in clients for line in c.lines if "resending" in line),
        "requests_held_by_the_killed_server": len(taken) - len(answered),
    }


def reply_times(clients):
    return sorted(t for client in clients for t in client.arrivals(ECHO_RE))


def rate(times, start, end):
    return sum(1 for t in times if start <= t < end) / (end - start)


def measure_silent_fault(spawn, victim_kind, before_s, frozen_s):
    """4 mreq.py (--interval 0.05 --timeout 1) through 3 servers; SIGSTOP one server,
    or one of two brokers. All clients' replies/s before and during the freeze, and
    how long after the freeze every 1 s window from then on has 90% of the rate."""
    brokers = [start_broker(spawn) for _ in range(2 if victim_kind == "broker" else 1)]
    fronts, backs = [front for _, front, _ in brokers], [back for _, _, back in brokers]
    servers = [start_worker(spawn, *backs, args=["--quiet"]) for _ in range(3)]
    args = ["--connect", ",".join(fronts), "--interval", 0.05, "--timeout", STALL_TIMEOUT]
    clients = [spawn("mreq.py", *args) for _ in range(4)]
    for client in clients:
        client.wait_for(ECHO_RE, count=3)
    time.sleep(before_s)  # a benchmark measures over time; the tests never sleep
    victim = brokers[0][0] if victim_kind == "broker" else servers[0]
    frozen_at = time.monotonic()
    victim.send(signal.SIGSTOP)
    time.sleep(frozen_s)
    thawed_at = time.monotonic()
    victim.send(signal.SIGCONT)
    times = reply_times(clients)
    normal = rate(times, frozen_at - before_s + 0.5, frozen_at)
    starts = [frozen_at + i * 0.1 for i in range(int((frozen_s - 1) * 10))]
    back_at = None  # the earliest window start from which every window has 90%
    for start in reversed(starts):
        if rate(times, start, start + 1.0) < 0.9 * normal:
            break
        back_at = start
    for proc in [*clients, *servers, *(broker for broker, _, _ in brokers)]:
        proc.reap()
    return {
        "victim": victim_kind,
        "replies_per_s_before": normal,
        "replies_per_s_during": rate(times, back_at, thawed_at) if back_at else 0.0,
        "back_to_90_percent_s": back_at - frozen_at if back_at else None,
        "frozen_s": frozen_s,
        "resends": sum(len([ln for ln in c.lines if "resending" in ln]) for c in clients),
    }


def measure_slow_server(spawn, seconds):
    """16 mreq.py clients (--interval 0, default --timeout) through 4 servers with
    --work 0.01: all four fast, then one of them with --work 0.5 instead. DEALER
    deals round-robin, blind to how busy a server is: every fourth request waits
    behind the slow one. Replies/s of all clients, and their resends."""
    result = {"clients": 16, "seconds": seconds}
    for case, works in (("all_fast", [0.01] * 4), ("one_slow", [0.01] * 3 + [0.5])):
        _, front, back = start_broker(spawn)
        servers = [start_worker(spawn, back, args=["--quiet", "--work", w]) for w in works]
        clients = [spawn("mreq.py", "--connect", front, "--interval", 0) for _ in range(16)]
        for client in clients:
            client.wait_for(ECHO_RE)
        began = time.monotonic()
        time.sleep(seconds)  # a benchmark measures over time; the tests never sleep
        times = reply_times(clients)
        resends = sum(
            1 for c in clients for t, line in c.stamped if t >= began and "resending" in line
        )
        result[case] = {
            "works": works,
            "replies_per_s": rate(times, began, began + seconds),
            "resends": resends,
        }
        for proc in [*clients, *servers]:
            proc.reap()
    return result


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hold_clients(ctx, front, n, seconds):
    """n REQ sockets connect at once (a storm), each sends one request at once;
    then each sends one request a second for `seconds`. Returns the figures."""
    socks, poller = [], zmq.Poller()
    started = time.perf_counter()
    for _ in range(n):
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # as mreq.py does
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        sock.connect(front)
        sock.send(PAYLOAD)
        poller.register(sock, zmq.POLLIN)
        socks.append(sock)
    waiting = set(socks)
    deadline = started + 60
    while waiting and time.perf_counter() < deadline:
        for sock, _ in poller.poll(1000):
            sock.recv()
            waiting.discard(sock)
    storm = {"answered": n - len(waiting), "last_answered_s": time.perf_counter() - started}
    # Steady load: each client once a second, spread evenly over the second.
    index = {sock: k for k, sock in enumerate(socks)}
    now = time.perf_counter()
    due = [(now + k / n, k) for k in range(n)]  # sorted, so already a heap
    sent_at, latencies = {}, []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        now = time.perf_counter()
        while due and due[0][0] <= now:
            _, k = heapq.heappop(due)
            if socks[k] not in waiting:  # (one the storm left unanswered stays out)
                socks[k].send(PAYLOAD)
                sent_at[k] = now
        timeout = max(0, min(1000, int((due[0][0] - now) * 1000))) if due else 100
        for sock, _ in poller.poll(timeout):
            sock.recv()
            k = index[sock]
            if k not in sent_at:
                continue  # a late answer to the storm
            sent = sent_at.pop(k)
            latencies.append(time.perf_counter() - sent)
            heapq.heappush(due, (sent + 1.0, k))
    now = time.perf_counter()
    storm["stuck"] = sum(1 for sent in sent_at.values() if now - sent > 5.0)  # never answered
    for sock in socks:
        sock.close()
    return storm, latencies


def measure_connections(ctx, spawn, counts, seconds):
    """Clients held by one broker at one request a second each, after connecting at once."""
    points = []
    for n in counts:
        broker, front, back = start_broker(spawn)
        for _ in range(2):
            start_worker(spawn, back, args=["--quiet"])
        storm, latencies = hold_clients(ctx, front, n, seconds)
        points.append(
            {
                "clients": n,
                "storm_answered": storm["answered"],
                "storm_last_answered_s": storm["last_answered_s"],
                "unanswered_after_storm": storm["stuck"],
                "replies_per_s": len(latencies) / seconds,
                "p99_ms": percentile(latencies, 0.99) * 1e3 if latencies else None,
                "broker_rss_mb": rss_mb(broker.pid),
            }
        )
        broker.reap()
    return {"seconds": seconds, "points": points}


def two_cores():
    """(server core, client core), or None where there are not two to pin to. Pinned,
    because where the scheduler puts them otherwise changes a round trip by tens of
    percent from one run to the next."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    server_core, client_core = sorted(os.sched_getaffinity(0))[:2]
    return server_core, client_core


def pin(pid, core):
    """Every thread of a process (its ZeroMQ I/O thread too) onto one core."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {core})


MINIMAL_CLIENT = """
import sys, zmq
sock = zmq.Context().socket(zmq.REQ)
sock.connect(sys.argv[1])
for _ in range(int(sys.argv[2])):
    sock.send(b"Sat Nov 28 06:12:09 2026")
    sock.recv()
"""


def measure_client_overhead(spawn, requests, rounds):
    """c.py --interval 0 --quiet against a minimal pyzmq REQ loop, on the same rep.py,
    in alternating rounds. Per request = (t(3N) - t(N)) / 2N, so that both programs'
    start-up cancels out; t is wall-clock time, and the client's own CPU time."""
    rep, endpoint = start_rep(spawn, "--quiet")
    cores = two_cores()
    pinned = cores is not None
    server_core, client_core = cores or (0, 0)
    if pinned:
        pin(rep.pid, server_core)
    commands = {
        "c.py": lambda n: [sys.executable, str(HERE.parent / "c.py"), "--connect", endpoint,
                           "--interval", "0", "--quiet", "--count", str(n)],
        "minimal": lambda n: [sys.executable, "-c", MINIMAL_CLIENT, endpoint, str(n)],
    }  # fmt: skip

    def run(command):
        began = time.perf_counter()
        pin = (lambda: os.sched_setaffinity(0, {client_core})) if pinned else None
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=pin)  # noqa: PLW1509
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        assert child.returncode == 0, command
        return time.perf_counter() - began, usage.ru_utime + usage.ru_stime

    wall, cpu = {name: [] for name in commands}, {name: [] for name in commands}
    for round_ in range(rounds):
        order = list(commands.items())
        for name, command in order if round_ % 2 else order[::-1]:
            short, long = run(command(requests)), run(command(3 * requests))
            wall[name].append((long[0] - short[0]) / (2 * requests) * 1e6)
            cpu[name].append((long[1] - short[1]) / (2 * requests) * 1e6)
    result = {"requests": requests, "rounds": rounds, "pinned": pinned}
    for name in commands:
        result[f"{name}_us_per_request"] = statistics.median(wall[name])
        result[f"{name}_cpu_us_per_request"] = statistics.median(cpu[name])
    result["ratio"] = result["c.py_us_per_request"] / result["minimal_us_per_request"]
    result["cpu_ratio"] = result["c.py_cpu_us_per_request"] / result["minimal_cpu_us_per_request"]
    return result


# The bare loops of figure 9: the server's work and nothing else. argv: endpoint, and
# "print" for the two lines per request the script prints (flushed, as it flushes).
BARE_LOOP = """
import hashlib, os, sys, zmq
pid, printing = os.getpid(), sys.argv[2] == "print"
sock = zmq.Context().socket(zmq.REP)
sock.HOW(sys.argv[1])
print(f"python (pid={pid}): bare loop on {sock.LAST_ENDPOINT.decode()}", flush=True)
while True:
    request = sock.recv()
    if printing:
        print(f"python: received '{request.decode()}' from client.", flush=True)
    reply = ANSWER
    if printing:
        print(f"python (pid={pid}): SENDING{reply.decode()}", flush=True)
    sock.send(reply)
"""


def bare_loop(how, answer, sending):
    """The loop for one server: how it meets its clients, its work, its second line."""
    return BARE_LOOP.replace("HOW", how).replace("ANSWER", answer).replace("SENDING", sending)


BARE = {
    "rep.py": bare_loop(
        "bind",
        "hashlib.sha1(request).hexdigest().encode()",
        "sending back sha1 of the received data: ",
    ),
    "mrep.py": bare_loop("connect", "request", "sending back the received data: "),
}
READY = {  # the line each server prints once it can take requests
    "rep.py": r"serving sha1 on (tcp://[^\s,]+)",
    "mrep.py": r"connected to broker at (tcp://\S+)",
    "bare": r"bare loop on (tcp://\S+)",
}
REQUESTS = {"rep.py": b"Sat Nov 28 06:12:09 2026", "mrep.py": b"qwertyuiop (from client pid=4242)"}
IN_FLIGHT = 8  # requests queued at the server, so that it never waits for the next one
PER_REQUEST_LINE = re.compile(r"python: received |python \(pid=\d+\): sending back ")


def wait_in_file(proc, path, pattern):
    """The first match of `pattern` in what `proc` has written to the file `path`."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and proc.popen.poll() is None:
        found = re.search(pattern, path.read_text())
        if found:
            return found
        time.sleep(0.01)
    raise RuntimeError(
        f"{proc.name} {' '.join(proc.args)} did not print {pattern!r}: "
        f"{path.read_text()[-500:]!r} {proc.stderr_lines[-10:]}"
    )


def start_pair(ctx, spawn, script, printing, folder):
    """The script and its bare loop, stdout to a file each, and a DEALER of ours on
    each (mrep.py's bound here, as a broker's back end is). {name: (proc, sock, file)}."""
    quiet, mode = ([] if printing else ["--quiet"]), ("print" if printing else "quiet")
    pair = {}
    for name in (script, "bare"):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.sndtimeo = sock.rcvtimeo = int(WAIT * 1000)  # a dead server: an error, not a hang
        endpoint = ANY_PORT
        if script == "mrep.py":
            sock.bind(ANY_PORT)
            endpoint = sock.LAST_ENDPOINT.decode()
        sink = folder / f"{script}-{name}-{mode}.out"
        with sink.open("w") as out:
            if name == "rep.py":
                proc = spawn(name, "--bind", endpoint, *quiet, stdout=out)
            elif name == "mrep.py":
                proc = spawn(name, "--connect", endpoint, *quiet, stdout=out)
            else:
                program = [sys.executable, "-c", BARE[script]]
                proc = spawn(f"bare loop for {script}", endpoint, mode, program=program, stdout=out)
        ready = wait_in_file(proc, sink, READY[name])
        if script == "rep.py":
            sock.connect(ready.group(1))
        pair[name] = (proc, sock, sink)
    return pair


def pump(sock, request, seconds):
    """Keep IN_FLIGHT requests queued at one server for `seconds`, then let them all
    come back. Returns (replies while measuring, seconds measured)."""
    for _ in range(IN_FLIGHT):
        sock.send_multipart([b"", request])
    replies, begin = 0, time.perf_counter()
    while time.perf_counter() < begin + seconds:
        sock.recv_multipart()
        replies += 1
        sock.send_multipart([b"", request])
    measured = time.perf_counter() - begin
    for _ in range(IN_FLIGHT):
        sock.recv_multipart()  # the other server's round starts with nothing left here
    return replies, measured


def per_request_lines(path, count=2):
    """The first `count` per-request lines in a server's output, its pid taken out."""
    lines = []
    with path.open() as output:
        for line in output:
            if PER_REQUEST_LINE.match(line):
                lines.append(re.sub(r"pid=\d+", "pid=N", line.rstrip("\n")))
            if len(lines) == count:
                break
    return lines


def compare_with_bare(ctx, spawn, script, printing, *, folder, seconds, rounds, cores):
    """One server against its bare loop, in alternating rounds of seconds / rounds."""
    pair = start_pair(ctx, spawn, script, printing, folder)
    request = REQUESTS[script]
    for proc, sock, _ in pair.values():
        if cores:
            pin(proc.pid, cores[0])
        pump(sock, request, min(0.2, seconds / rounds))  # warm up; and is it answering?
    rates = {name: [] for name in pair}
    cpu, handled = dict.fromkeys(pair, 0.0), dict.fromkeys(pair, 0)
    for round_ in range(rounds):
        order = list(pair.items())
        for name, (proc, sock, _) in order if round_ % 2 == 0 else order[::-1]:
            before = cpu_seconds(proc.pid)
            replies, measured = pump(sock, request, seconds / rounds)
            cpu[name] += cpu_seconds(proc.pid) - before
            handled[name] += replies + IN_FLIGHT
            rates[name].append(replies / measured)
    for proc, sock, _ in pair.values():
        proc.reap()
        sock.close()
    # The bare loop must print what the script prints, or the figure compares other work.
    lines = {name: per_request_lines(sink) for name, (_, _, sink) in pair.items()}
    if lines[script] != lines["bare"] or len(lines[script]) != (2 if printing else 0):
        raise RuntimeError(f"{script} and its bare loop print different lines: {lines}")
    # CPU over all rounds: /proc counts it in clock ticks (10 ms), too coarse for one.
    cpu_us = {name: cpu[name] / handled[name] * 1e6 for name in pair}
    return {
        "script": script,
        "printing": printing,
        "script_replies_per_s": statistics.median(rates[script]),
        "bare_replies_per_s": statistics.median(rates["bare"]),
        "ratio": statistics.median(s / b for s, b in zip(rates[script], rates["bare"])),
        "script_cpu_us_per_request": cpu_us[script],
        "bare_cpu_us_per_request": cpu_us["bare"],
        "cpu_ratio": cpu_us[script] / cpu_us["bare"] if cpu_us["bare"] else None,
    }


def measure_no_slower(spawn, seconds, rounds):
    """rep.py and mrep.py, quiet and printing, each against its bare loop: servers on
    one core, this load generator (this thread and its ZeroMQ I/O thread) on the other."""
    cores = two_cores()
    saved = os.sched_getaffinity(0) if cores else None
    if cores:
        os.sched_setaffinity(0, {cores[1]})  # this thread, and the threads it starts
    ctx = zmq.Context()  # so its I/O thread starts on this load's core
    cases = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for script in ("rep.py", "mrep.py"):
                for printing in (False, True):
                    case = compare_with_bare(
                        ctx, spawn, script, printing,
                        folder=Path(folder), seconds=seconds, rounds=rounds, cores=cores,
                    )  # fmt: skip
                    cases.append(case)
    finally:
        ctx.destroy(linger=0)
        if cores:
            os.sched_setaffinity(0, saved)
    return {
        "seconds": seconds,
        "rounds": rounds,
        "in_flight": IN_FLIGHT,
        "pinned": cores is not None,
        "cases": cases,
    }


def machine():
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "os": platform.platform(),
    }


def verdicts(results):
    scaling_at_8 = results["scaling"]["points"][-1]["efficiency"]
    return {
        "latency_ratio": results["latency"]["ratio_median"] <= TARGETS["latency_ratio_max"],
        "broker_cpu_ratio": results["broker_cost"]["cpu_ratio"] <= TARGETS["broker_cpu_ratio_max"],
        "efficiency_at_8": scaling_at_8 >= TARGETS["efficiency_at_8_min"],
        "stall": results["stall"]["over_timeout_s"] <= TARGETS["stall_over_timeout_max"],
        "client_overhead": results["client_overhead"]["ratio"]
        <= TARGETS["client_overhead_ratio_max"],
        "silent_faults": all(
            f["back_to_90_percent_s"] is not None
            and f["back_to_90_percent_s"] <= TARGETS["silent_back_within_s"]
            and f["replies_per_s_during"]
            >= TARGETS["silent_rate_during_min"] * f["replies_per_s_before"]
            for f in results["silent_faults"]
        ),
        "storm_all_answered": all(
            p["storm_answered"] == p["clients"] for p in results["connections"]["points"]
        ),
        "servers_no_slower": all(
            case["ratio"] >= TARGETS["server_ratio_min"] for case in results["no_slower"]["cases"]
        ),
        "secret_cost": secret_verdict(results["secret_cost"]),
    }


def secret_verdict(cost):
    """Figure 10 against its targets: requests/s and round trip, with --secret / without."""
    return (
        cost["requests_ratio"] >= TARGETS["secret_requests_ratio_min"]
        and cost["round_trip_ratio"] <= TARGETS["secret_round_trip_ratio_max"]
    )


def secret_rows(cost, met):
    """Figure 10's rows of the table; `met`: its verdict."""
    ok = {True: "met", False: "MISSED"}
    least, most = TARGETS["secret_requests_ratio_min"], TARGETS["secret_round_trip_ratio_max"]
    return [
        (
            "brokered requests/s, 8 clients, without / with --secret",
            f"{cost['plain_requests_per_s']:.0f} / {cost['secret_requests_per_s']:.0f}, "
            f"{cost['requests_ratio']:.2f}x",
            f">= {least:g}x, round trip <= {most:g}x: {ok[met]}",
        ),
        (
            "brokered round trip, without / with --secret (median)",
            f"{cost['plain_median_us']:.0f} / {cost['secret_median_us']:.0f} us, "
            f"{cost['round_trip_ratio']:.2f}x",
            "",
        ),
        (
            "brokered round trip, without / with --secret (p99)",
            f"{cost['plain_p99_us']:.0f} / {cost['secret_p99_us']:.0f} us",
            "",
        ),
    ]


def table(results):
    lat, cost, stall = results["latency"], results["broker_cost"], results["stall"]
    ok = {True: "met", False: "MISSED"}
    met = results["targets_met"]
    rows = [
        ("round trip, direct (median / p99)",
         f"{lat['direct_median_us']:.0f} / {lat['direct_p99_us']:.0f} us", ""),
        ("round trip, brokered (median / p99)",
         f"{lat['brokered_median_us']:.0f} / {lat['brokered_p99_us']:.0f} us", ""),
        ("brokered / direct, median",
         f"{lat['ratio_median']:.2f}x", f"<= 2.2x: {ok[met['latency_ratio']]}"),
        ("requests/s, msgqueue.py / Python loop",
         f"{cost['msgqueue_requests_per_s']:.0f} / {cost['reference_requests_per_s']:.0f}, "
         f"{cost['requests_ratio']:.2f}x", ""),
        ("broker CPU per request, msgqueue.py / Python loop",
         f"{cost['msgqueue_cpu_us_per_request']:.1f} / "
         f"{cost['reference_cpu_us_per_request']:.1f} us", ""),
        ("broker CPU ratio", f"{cost['cpu_ratio']:.2f}x",
         f"<= 0.65x: {ok[met['broker_cpu_ratio']]}"),
    ]  # fmt: skip
    for point in results["scaling"]["points"]:
        rows.append(
            (
                f"{point['servers']} server(s), --work {SCALING_WORK}, 16 clients",
                f"{point['requests_per_s']:.0f} req/s, {point['efficiency']:.0%} of ideal",
                f">= 90%: {ok[met['efficiency_at_8']]}" if point["servers"] == 8 else "",
            )
        )
    rows.append(
        (
            f"fail-over: worst extra latency (--timeout {stall['timeout_s']:g})",
            f"{stall['worst_extra_latency_s']:.3f} s",
            f"<= timeout + 0.2 s: {ok[met['stall']]}",
        )
    )
    for fault in results["silent_faults"]:
        back = fault["back_to_90_percent_s"]
        rows.append(
            (
                f"one {fault['victim']} frozen: replies/s before / during, back to 90% after",
                f"{fault['replies_per_s_before']:.0f} / {fault['replies_per_s_during']:.0f}, "
                + (f"{back:.1f} s" if back is not None else "never"),
                f"<= {TARGETS['silent_back_within_s']:g} s, >= 90%: {ok[met['silent_faults']]}",
            )
        )
    slow = results["slow_server"]
    for case, label in (
        ("all_fast", "4 servers --work 0.01"),
        ("one_slow", "same, one --work 0.5"),
    ):
        rows.append(
            (
                f"{label}, 16 clients: replies/s, resends",
                f"{slow[case]['replies_per_s']:.0f}/s, {slow[case]['resends']}",
                "",
            )
        )
    for point in results["connections"]["points"]:
        rows.append(
            (
                f"{point['clients']} clients connecting at once: answered, last after",
                f"{point['storm_answered']}, {point['storm_last_answered_s']:.2f} s",
                f"all: {ok[met['storm_all_answered']]}",
            )
        )
        rows.append(
            (
                f"{point['clients']} clients at 1 request/s: replies/s, p99, broker RSS",
                f"{point['replies_per_s']:.0f}/s, {point['p99_ms']:.1f} ms, "
                f"{point['broker_rss_mb']:.0f} MB",
                "",
            )
        )
    over = results["client_overhead"]
    rows.append(
        (
            "client time per request, c.py / minimal REQ loop",
            f"{over['c.py_us_per_request']:.0f} / {over['minimal_us_per_request']:.0f} us, "
            f"{over['ratio']:.2f}x",
            f"<= 1.15x: {ok[met['client_overhead']]}",
        )
    )
    rows.append(
        (
            "client CPU per request, c.py / minimal REQ loop",
            f"{over['c.py_cpu_us_per_request']:.0f} / {over['minimal_cpu_us_per_request']:.0f}"
            f" us, {over['cpu_ratio']:.2f}x",
            "",
        )
    )
    least = TARGETS["server_ratio_min"]
    for case in results["no_slower"]["cases"]:
        versus = f"{case['script']} / bare loop, {'printing' if case['printing'] else '--quiet'}"
        rows.append(
            (
                f"replies/s, {versus}",
                f"{case['script_replies_per_s']:.0f} / {case['bare_replies_per_s']:.0f}, "
                f"{case['ratio']:.2f}x",
                f">= {least:g}x: {ok[case['ratio'] >= least]}",
            )
        )
        cpu_ratio = f"{case['cpu_ratio']:.2f}x" if case["cpu_ratio"] is not None else "-"
        rows.append(
            (
                f"server CPU per request, {versus}",
                f"{case['script_cpu_us_per_request']:.0f} / {case['bare_cpu_us_per_request']:.0f}"
                f" us, {cpu_ratio}",
                "",
            )
        )
    if "secret_cost" in results:  # (a run from before figure 10 has none)
        rows += secret_rows(results["secret_cost"], met["secret_cost"])
    return aligned(rows)


def aligned(rows):
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:<24} {c}".rstrip() for a, b, c in rows)


def only_secret(ctx, requests, seconds, rounds):
    """--only secret: figure 10 alone, printed (its figures, then its rows of the table)."""
    try:
        with processes() as spawn:
            cost = measure_secret_cost(ctx, spawn, requests, seconds, rounds)
    finally:
        ctx.destroy(linger=0)
    print(json.dumps(cost, indent=2))
    print(aligned(secret_rows(cost, secret_verdict(cost))))


def plot(results, path):
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    points = results["scaling"]["points"]
    servers = [p["servers"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(servers, [p["requests_per_s"] for p in points], "o-", label="measured")
    ax.plot(servers, [n / SCALING_WORK for n in servers], "--", label="ideal (n / work)")
    ax.set_xlabel("servers (mrep.py --work 0.02)")
    ax.set_ylabel("requests/s (16 clients)")
    ax.set_xticks(servers)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--json", default=HERE / "results.json", type=Path, help="results file")
    parser.add_argument("--png", default=HERE / "scaling.png", type=Path, help="plot file")
    parser.add_argument(
        "--only", choices=["secret"], help="this figure alone (10): print it, write no files"
    )
    parser.add_argument("--reference-broker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--frontend", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.reference_broker:
        reference_broker(args.frontend, args.backend)
        return
    # Every script started here would take it as --secret, and the clients here speak
    # CURVE only where figure 10 asks for it.
    os.environ.pop("REQREP_SECRET", None)

    requests, seconds, settle = (400, 0.5, 5) if args.quick else (6000, 6.0, 20)
    rounds = 2 if args.quick else 6
    counts, hold, overhead = ([200], 1.0, 300) if args.quick else ([1000, 4000], 10.0, 3000)
    freeze = (1.0, 5.0) if args.quick else (4.0, 12.0)  # seconds before, and frozen
    slow_seconds = 2.0 if args.quick else 10.0
    no_slower = (0.2, 2) if args.quick else (3.0, 12)  # seconds per server, and rounds
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 4000 clients: 4000 files here
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = zmq.Context()
    ctx.max_sockets = 10_000
    if args.only == "secret":
        only_secret(ctx, requests, seconds, rounds)
        return
    try:
        with processes() as spawn:
            results = {"quick": args.quick, "machine": machine(), "targets": TARGETS}
            print("measuring round-trip latency...", flush=True)
            results["latency"] = measure_latency(ctx, spawn, requests, rounds)
            print("measuring broker cost...", flush=True)
            results["broker_cost"] = measure_broker_cost(ctx, spawn, seconds, rounds)
            print("measuring scaling...", flush=True)
            results["scaling"] = measure_scaling(ctx, spawn, seconds)
            print("measuring fail-over stall...", flush=True)
            results["stall"] = measure_stall(spawn, settle)
            print("measuring silent faults...", flush=True)
            results["silent_faults"] = [
                measure_silent_fault(spawn, kind, *freeze) for kind in ("server", "broker")
            ]
            print("measuring one slow server...", flush=True)
            results["slow_server"] = measure_slow_server(spawn, slow_seconds)
            print("measuring connections held...", flush=True)
            results["connections"] = measure_connections(ctx, spawn, counts, hold)
            print("measuring client overhead...", flush=True)
            results["client_overhead"] = measure_client_overhead(spawn, overhead, 2 * rounds)
            print("measuring servers against bare loops...", flush=True)
            results["no_slower"] = measure_no_slower(spawn, *no_slower)
            print("measuring the cost of --secret...", flush=True)
            results["secret_cost"] = measure_secret_cost(ctx, spawn, requests, seconds, rounds)
    finally:
        ctx.destroy(linger=0)
    results["targets_met"] = verdicts(results)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"results: {args.json}")
    if plot(results, args.png):
        print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
