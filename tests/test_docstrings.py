"""The pattern each script's docstring shows, as the zguide would write it, is run
for real here, so the few lines a reader meets first never go stale."""

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
