"""Cross-host: the broker, a server and a client on three "hosts" (network
namespaces joined by veth pairs), each reaching the broker by its address.
Also what crosses a real link: a partition (the server's link taken down, so
its connection goes silent, not closed) and a slow link (a token-bucket rate
limit) carrying a request near --max-size. And what a tap on the broker's
host reads off both links: with --secret, no request's text; without, all of it.

    server 198.18.1.2 --veth-- 198.18.1.1 BROKER 198.18.2.1 --veth-- 198.18.2.2 client
                                    (198.18.0.1: the broker's own
                                     address, routed from both sides)

198.18.0.0/15 is the range set aside for network tests (RFC 2544); these
addresses exist only inside the namespaces this test makes, and the test
deletes the namespaces afterwards, whatever happens. The flags are the README's
("Running across machines"). Skipped, with the reason, where namespaces
cannot be made (not root, or no iproute2); under CI=true that fails instead.
"""

import os
import re
import struct
import subprocess
import sys
from socket import inet_ntoa

import pytest
from conftest import (
    DIGEST_RE,
    ECHO_RE,
    RESEND_RE,
    ROOT,
    check_echo_client,
    check_namespaces_possible,
    check_sha_client,
    ip,
    unavailable,
    without_secret,
)

BROKER_ADDRESS = "198.18.0.1"
FRONTEND = f"tcp://{BROKER_ADDRESS}:5559"
BACKEND = f"tcp://{BROKER_ADDRESS}:5560"
PHRASE = "our long phrase"  # the README's
SECRET = ["--secret", PHRASE]


@pytest.fixture
def hosts():
    """Three namespaces: broker, server, client. Yields their names (and "link_to_server":
    the broker's end of the server's veth); always removes them."""
    check_namespaces_possible()
    tag = f"zq{os.getpid() % 100000}"
    names = {role: f"{tag}{role[0]}" for role in ("broker", "server", "client")}
    made = []
    try:
        for name in names.values():
            try:
                ip("netns", "add", name)
            except subprocess.CalledProcessError as err:
                unavailable(f"cannot make a network namespace here: {err.stderr.strip()}")
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        broker = names["broker"]
        ip("-n", broker, "addr", "add", f"{BROKER_ADDRESS}/32", "dev", "lo")
        for side, subnet in (("server", 1), ("client", 2)):
            host, near, far = names[side], f"{tag}b{side[0]}", f"{tag}{side[0]}b"
            ip("link", "add", near, "netns", broker, "type", "veth", "peer", far, "netns", host)
            ip("-n", broker, "addr", "add", f"198.18.{subnet}.1/24", "dev", near)
            ip("-n", host, "addr", "add", f"198.18.{subnet}.2/24", "dev", far)
            ip("-n", broker, "link", "set", near, "up")
            ip("-n", host, "link", "set", far, "up")
            ip("-n", host, "route", "add", f"{BROKER_ADDRESS}/32", "via", f"198.18.{subnet}.1")
        yield {**names, "link_to_server": f"{tag}bs", "link_of_server": f"{tag}sb"}
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def on(host, spawn, script, *args, **options):
    """Run a script inside a namespace, as if on that host."""
    command = ["ip", "netns", "exec", host, sys.executable, str(ROOT / script)]
    return spawn(script, *args, program=command, **options)


def test_readme_shows_these_exact_commands():
    readme = (ROOT / "README.md").read_text()
    for command in (
        f"python msgqueue.py --frontend {FRONTEND} --backend {BACKEND} --secret '{PHRASE}'",
        f"python mrep.py --connect {BACKEND} --secret '{PHRASE}'",
        f"python mreq.py --connect {FRONTEND} --secret '{PHRASE}'",
    ):
        assert f"$ {command}\n" in readme


def serve_one_client(spawn, hosts, server_host):
    """A server on `server_host` joins the broker and answers a client on the client host."""
    server = on(hosts[server_host], spawn, "mrep.py", "--connect", BACKEND, *SECRET)
    server.wait_for(f"connected to broker at {BACKEND}$")
    args = ["--connect", FRONTEND, "--count", 5, "--interval", 0, *SECRET]
    check_echo_client(on(hosts["client"], spawn, "mreq.py", *args), 5)
    server.wait_for(r"sending back the received data: .*", count=5)
    return server


def test_broker_server_and_client_on_three_hosts(spawn, hosts):
    args = ["--frontend", FRONTEND, "--backend", BACKEND, *SECRET]
    broker = on(hosts["broker"], spawn, "msgqueue.py", *args)
    broker.wait_for(f"broker up, clients on {FRONTEND}, servers on {BACKEND} ")
    server = serve_one_client(spawn, hosts, "server")
    # The server moves to the client's host: it joins from there, and serves.
    server.stop()
    serve_one_client(spawn, hosts, "client")


def start_three(spawn, hosts, *client_args):
    broker = on(hosts["broker"], spawn, "msgqueue.py", "--frontend", FRONTEND, "--backend", BACKEND)
    broker.wait_for(f"broker up, clients on {FRONTEND}, servers on {BACKEND} ")
    server = on(hosts["server"], spawn, "mrep.py", "--connect", BACKEND, "--quiet")
    server.wait_for(f"connected to broker at {BACKEND}$")
    return broker, server


def test_partitioned_server_is_dropped_then_rejoins_when_healed(spawn, hosts):
    broker, server = start_three(spawn, hosts)
    nearby = on(hosts["broker"], spawn, "mrep.py", "--connect", BACKEND, "--quiet")
    nearby.wait_for(f"connected to broker at {BACKEND}$")
    broker.wait_for("server connected, 2 connected now")
    args = ["--connect", FRONTEND, "--count", 150, "--interval", 0.02, "--timeout", 1]
    client = on(hosts["client"], spawn, "mreq.py", *args)
    client.wait_for(r"received the original data", count=5)
    # The cable is pulled: no packet crosses, and no connection is closed.
    ip("-n", hosts["broker"], "link", "set", hosts["link_to_server"], "down")
    broker.wait_for("server left, 1 connected now")  # the heartbeat noticed
    server.wait_for(f"lost broker at {BACKEND}, reconnecting")  # and so did the server
    resent = len(client.matches(RESEND_RE))
    client.wait_for(r"received the original data", count=len(client.matches(ECHO_RE)) + 20)
    assert len(client.matches(RESEND_RE)) <= resent + 1  # none once the server was dropped
    ip("-n", hosts["broker"], "link", "set", hosts["link_to_server"], "up")
    server.wait_for(f"connected to broker at {BACKEND}$", count=2)
    broker.wait_for("server connected, 2 connected now", count=2)
    check_echo_client(client, 150)


def slow_link(hosts):
    """5 Mbit/s each way between broker and server, through one queue each way."""
    for host, link in (("broker", "link_to_server"), ("server", "link_of_server")):
        subprocess.run(
            ["tc", "-n", hosts[host], "qdisc", "add", "dev", hosts[link], "root",
             "tbf", "rate", "5mbit", "burst", "32kbit", "latency", "5s"],
            check=True, capture_output=True,
        )  # fmt: skip


def big_client(spawn, host, endpoint, answer):
    command = ["ip", "netns", "exec", host, sys.executable, "-c", BIG_CLIENT, endpoint, answer]
    return spawn("big client", program=command)


def test_request_near_max_size_over_a_slow_link_is_not_cut_by_heartbeats(spawn, hosts):
    # A 1,000,000-byte request takes about 1.6 s to cross at 5 Mbit/s, under the
    # 3 s heartbeat timeout (README: the limit). A client on the server's host
    # shares that link: its heartbeats wait in the same queue, behind the big
    # messages, and it must not be dropped either.
    slow_link(hosts)
    broker, server = start_three(spawn, hosts)
    neighbour = on(hosts["server"], spawn, "mreq.py", *NEIGHBOUR_ARGS, "--connect", FRONTEND)
    neighbour.wait_for(ECHO_RE)
    client = big_client(spawn, hosts["client"], FRONTEND, "echo")
    client.wait_for(r"^answered 1000000 bytes$", count=2)
    assert client.wait() == 0, client.stderr
    assert not server.matches(re.compile(".*lost broker"))
    check_echo_client(neighbour, NEIGHBOUR_COUNT)
    assert not neighbour.matches(RESEND_RE)


def test_part1_request_near_max_size_over_a_slow_link_is_not_cut_by_heartbeats(spawn, hosts):
    # The same for rep.py, reached from the server's host over the slow link.
    slow_link(hosts)
    endpoint = f"tcp://{BROKER_ADDRESS}:5556"
    rep = on(hosts["broker"], spawn, "rep.py", "--bind", endpoint, "--quiet")
    rep.wait_for("serving sha1 on")
    neighbour = on(hosts["server"], spawn, "c.py", *NEIGHBOUR_ARGS, "--connect", endpoint)
    neighbour.wait_for(DIGEST_RE)
    client = big_client(spawn, hosts["server"], endpoint, "sha1")
    client.wait_for(r"^answered 1000000 bytes$", count=2)
    assert client.wait() == 0, client.stderr
    check_sha_client(neighbour, NEIGHBOUR_COUNT)
    assert not neighbour.matches(RESEND_RE)


NEIGHBOUR_COUNT = 40  # at --interval 0.2: longer than the big client's two round trips
NEIGHBOUR_ARGS = ["--count", NEIGHBOUR_COUNT, "--interval", 0.2, "--timeout", 10]

BIG_CLIENT = """
import hashlib, sys, zmq
sock = zmq.Context().socket(zmq.REQ)
sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)  # as our clients do
sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
sock.setsockopt(zmq.RCVTIMEO, 20000)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(sys.argv[1])
for n in range(2):
    request = bytes([n]) * 1_000_000
    sock.send(request)
    answer = request if sys.argv[2] == "echo" else hashlib.sha1(request).hexdigest().encode()
    assert sock.recv() == answer
    print(f"answered {len(request)} bytes", flush=True)
"""


# --secret on the wire: a tap on the broker's host (every frame through every
# interface of its namespace, so both links: the client's and the server's) while
# the README's three commands answer a client. With --secret, no request text
# crosses in the clear; without (the control), every request does: the tap sees it.
TAPPED = 5  # requests
WAYS = [(port, way) for port in (5559, 5560) for way in ("to", "from")]  # FRONTEND, BACKEND
ZMTP_SIGNATURE = (0xFF, 0x7F)  # a ZMTP 3 greeting's bytes 0 and 9; the mechanism at 12 to 32


def test_with_secret_no_request_crosses_the_wire_in_the_clear(spawn, hosts, tmp_path):
    requests, pcap = tapped_run(spawn, hosts, tmp_path / "secret.pcap", *SECRET)
    streams = tcp_streams(pcap)
    check_wire_carried(streams, requests)
    seen = [pcap, *streams.values()]  # the frames as captured, and each connection's bytes
    texts = [*requests, "(from client pid=", PHRASE]
    assert not [text for text in texts if any(text.encode() in data for data in seen)]
    assert {mechanism(data) for data in streams.values()} == {b"CURVE"}  # every connection


def test_without_secret_the_tap_sees_every_request(spawn, hosts, tmp_path):
    # The control: the same run and the same tap, no --secret. Every request, and
    # its echo, is read in the clear on both links, so the test above can fail.
    requests, pcap = tapped_run(spawn, hosts, tmp_path / "clear.pcap")
    streams = tcp_streams(pcap)
    check_wire_carried(streams, requests)
    assert {mechanism(data) for data in streams.values()} == {b"NULL"}
    for text in requests:
        for port, way in WAYS:
            assert text.encode() in carried(streams, port, way), f"{text!r} not {way} {port}"


def tapped_run(spawn, hosts, pcap, *secret):
    """The README's three commands, each given `secret`, answer a client while a tap on
    the broker's host captures every frame into `pcap`. The requests answered, and the
    capture file's bytes, once all three have exited and the tap has read the last frame."""
    env = without_secret()
    tap = tap_on(spawn, hosts["broker"], pcap)
    broker = on(hosts["broker"], spawn, "msgqueue.py", "--frontend", FRONTEND, "--backend",
                BACKEND, *secret, env=env)  # fmt: skip
    broker.wait_for(f"broker up, clients on {FRONTEND}, servers on {BACKEND} ")
    server = on(hosts["server"], spawn, "mrep.py", "--connect", BACKEND, *secret, env=env)
    server.wait_for(f"connected to broker at {BACKEND}$")
    args = ["--connect", FRONTEND, "--count", TAPPED, "--interval", 0, *secret]
    requests = check_echo_client(on(hosts["client"], spawn, "mreq.py", *args, env=env), TAPPED)
    server.wait_for(r"sending back the received data: .*", count=TAPPED)
    server.stop()
    broker.stop()  # the wire is quiet: nothing in flight when the tap stops
    tap.stop()
    frames, dropped = map(int, tap.wait_for(r"^tapped (\d+) frames, (\d+) dropped$").groups())
    assert dropped == 0  # the kernel kept every frame for the tap: none went unread
    data = pcap.read_bytes()
    print(f"tap: {frames} frames, {len(data)} bytes of pcap")  # shown when a test fails
    return requests, data


def tap_on(spawn, host, pcap):
    """The tap (TAP, below) in a namespace, writing to the file `pcap` when stopped."""
    command = ["ip", "netns", "exec", host, sys.executable, "-c", TAP, str(pcap)]
    tap = spawn("tap", program=command)
    tap.wait_for("^tapping every interface$")
    return tap


def tcp_streams(pcap):
    """Each TCP direction's payload, in capture order: (source, port, destination,
    port) -> bytes. Every frame of a pcap file (Ethernet, as the tap writes them)."""
    streams = {}
    at = 24  # past the file's header
    while at < len(pcap):
        size = struct.unpack_from("<I", pcap, at + 8)[0]
        frame, at = pcap[at + 16 : at + 16 + size], at + 16 + size
        if frame[12:14] != b"\x08\x00" or frame[23] != 6:  # IPv4, then TCP
            continue
        packet = frame[14 : 14 + struct.unpack_from("!H", frame, 16)[0]]
        segment = packet[(packet[0] & 0x0F) * 4 :]
        payload = segment[(segment[12] >> 4) * 4 :]
        if payload:
            source, destination = struct.unpack_from("!HH", segment)
            key = (inet_ntoa(packet[12:16]), source, inet_ntoa(packet[16:20]), destination)
            streams[key] = streams.get(key, b"") + payload
    return streams


def carried(streams, port, way):
    """All the bytes sent to (way "to") or from a port, every connection's, joined."""
    return b"".join(data for key, data in streams.items() if key[3 if way == "to" else 1] == port)


def check_wire_carried(streams, requests):
    """The tap saw the traffic, so that seeing no text in it means something: each
    request and its echo crossed both links, and sealing never makes a message
    shorter, so each way of each port carried at least the requests' bytes."""
    assert len(requests) == TAPPED
    least = sum(len(text.encode()) for text in requests)
    for port, way in WAYS:
        got = len(carried(streams, port, way))
        print(f"tap: {got} bytes of TCP payload {way} port {port}")
        assert got >= least, f"{got} bytes {way} port {port}, fewer than the requests' {least}"


def mechanism(stream):
    """The security mechanism a ZMTP 3 greeting, the start of every stream, names."""
    assert len(stream) >= 64 and (stream[0], stream[9]) == ZMTP_SIGNATURE, stream[:64]
    return stream[12:32].rstrip(b"\0")


TAP = """
import select, signal, socket, struct, sys, time

# A packet socket for every protocol (ETH_P_ALL = 3): every frame through every
# interface of this namespace, in and out, kept until Ctrl-C; then, with what
# was still queued to read, written to a pcap file (sys.argv[1]).
tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
tap.setblocking(False)
woken, wake = socket.socketpair()  # the signal's byte ends the select() at once
wake.setblocking(False)
signal.set_wakeup_fd(wake.fileno())
stopping = []
signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
print("tapping every interface", flush=True)
frames = []

def read_all():
    while True:
        try:
            frames.append((time.time(), tap.recv(1 << 18)))
        except BlockingIOError:
            return

while not stopping:
    select.select([tap, woken], [], [])
    read_all()
read_all()
dropped = struct.unpack("II", tap.getsockopt(263, 6, 8))[1]  # SOL_PACKET, PACKET_STATISTICS
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 1 << 18, 1))  # 1: Ethernet
    for when, frame in frames:
        seconds = int(when)
        micros = int((when - seconds) * 1e6)
        out.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
print(f"tapped {len(frames)} frames, {dropped} dropped", flush=True)
"""
