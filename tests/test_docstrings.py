"""The pattern each script's docstring shows, as the zguide would write it, is run
for real here, so the few lines a reader meets first never go stale."""

import hashlib
import re
import socket
import sys

import zmq
from conftest import ROOT, Proc

MARK = "The pattern, as the zguide writes it"


def snippet(script):
    """The indented code block that follows MARK in the script's docstring."""
    doc = (ROOT / script).read_text().split('"""')[1]
    assert MARK in doc, f"{script}'s docstring shows no pattern"
    block = re.search(r"\n\n((?:    .*\n|\n)+)", doc[doc.index(MARK) :]).group(1)
    return "\n".join(line[4:] for line in block.splitlines())


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_broker_docstring_pattern_brokers_a_request(zctx):
    code = snippet("msgqueue.py")
    assert "zmq.proxy(frontend, backend)" in code
    front, back = free_port(), free_port()
    code = code.replace(":5559", f":{front}").replace(":5560", f":{back}")
    broker = Proc("snippet", program=[sys.executable, "-c", "import zmq\n" + code])
    try:
        server = zctx.socket(zmq.REP)
        server.connect(f"tcp://127.0.0.1:{back}")
        client = zctx.socket(zmq.REQ)
        client.connect(f"tcp://127.0.0.1:{front}")
        client.send(b"through the snippet")
        assert server.poll(20_000), broker.stderr_lines
        server.send(server.recv() + b", and back")
        assert client.poll(20_000)
        assert client.recv() == b"through the snippet, and back"
    finally:
        broker.reap()


def run_snippet(script, port, default):
    """The script's snippet as a process of its own, on a free port for its default."""
    code = snippet(script)
    assert f":{default}" in code, f"{script}'s pattern names no port {default}"
    code = code.replace(f":{default}", f":{port}")
    program = [sys.executable, "-c", "import hashlib, random, time\nimport zmq\n" + code]
    return Proc(f"{script} snippet", program=program)


def test_server_docstring_patterns_answer_requests(zctx):
    rep_port, back = free_port(), free_port()
    dealer = zctx.socket(zmq.DEALER)  # the broker's back end, for mrep.py's snippet
    dealer.bind(f"tcp://127.0.0.1:{back}")
    rep = run_snippet("rep.py", rep_port, 5556)
    try:
        mrep = run_snippet("mrep.py", back, 5560)
    except BaseException:
        rep.reap()  # one that started is reaped, whatever the other did
        raise
    try:
        client = zctx.socket(zmq.REQ)
        client.connect(f"tcp://127.0.0.1:{rep_port}")
        client.send(b"hello")
        assert client.poll(20_000), rep.stderr_lines
        assert client.recv() == hashlib.sha1(b"hello").hexdigest().encode()
        dealer.send_multipart([b"", b"echo me"])
        assert dealer.poll(20_000), mrep.stderr_lines
        assert dealer.recv_multipart() == [b"", b"echo me"]
    finally:
        rep.reap()
        mrep.reap()


def test_client_docstring_patterns_send_and_check(zctx):
    for script, default, right in [
        ("c.py", 5556, lambda request: hashlib.sha1(request).hexdigest().encode()),
        ("mreq.py", 5559, lambda request: request),
    ]:
        server = zctx.socket(zmq.REP)
        port = server.bind_to_random_port("tcp://127.0.0.1")
        client = run_snippet(script, port, default)
        try:
            for _ in range(2):  # the second request comes once the first reply passed
                assert server.poll(20_000), (script, client.stderr_lines)
                server.send(right(server.recv()))
            assert server.poll(20_000), (script, client.stderr_lines)
        finally:
            client.reap()
            server.close()
