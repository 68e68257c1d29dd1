"""Twins stay twins: a piece two scripts share is the same text in both.

Each script stands alone, so a student can copy one file; the price is that a
fix made in one copy of a shared piece must be made in every copy. This test
fails when they drift apart, naming the piece and showing the difference.
"""

import ast
import difflib

import pytest
from conftest import ROOT

SERVERS_AND_BROKER = ["rep.py", "mrep.py", "msgqueue.py"]
BINDERS = ["rep.py", "msgqueue.py"]
CONNECTORS = ["mrep.py", "c.py", "mreq.py"]
CLIENTS = ["c.py", "mreq.py"]
ALL = [*SERVERS_AND_BROKER, *CLIENTS]
SHARED = [
    ("stop_requests", ALL),
    ("curve_keys", ALL),
    ("refuse", ALL),
    ("printable", ["rep.py", "mrep.py", *CLIENTS]),
    ("say", SERVERS_AND_BROKER),
    ("say", CLIENTS),  # a client's also stops it when nobody reads (c.py | head -3)
    ("bind", BINDERS),
    ("at_file_limit", BINDERS),
    ("check_ipc_path", BINDERS),
    ("raise_open_file_limit", BINDERS),
    ("check_endpoint", CONNECTORS),
    ("connect_each", CONNECTORS),
    ("as_given", CONNECTORS),
    ("connect_socket", CLIENTS),
    ("ask", CLIENTS),
    ("Refusals", CLIENTS),
    ("run", CLIENTS),
    ("within", CLIENTS),
    ("pause", CLIENTS),
    ("show", CLIENTS),
    ("main", CLIENTS),
]
# Same name, different on purpose: each script's own work, loop and flags.
OWN = {"answer", "serve", "new_request", "check_reply", "main", "connect_socket"}


def definition(script, name):
    source = (ROOT / script).read_text()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return ast.get_source_segment(source, node)
    raise AssertionError(f"{script} has no top-level {name}")


@pytest.mark.parametrize(("name", "scripts"), SHARED, ids=[f"{n}-{s[0]}" for n, s in SHARED])
def test_shared_piece_is_the_same_text_in_every_script(name, scripts):
    first, *others = scripts
    for other in others:
        a, b = definition(first, name), definition(other, name)
        diff = "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), first, other))
        assert a == b, f"{name} differs between {first} and {other}:\n{diff}"


def test_every_piece_two_scripts_define_is_a_twin_or_their_own():
    # A piece a script takes from another and then changes shows up here, not unseen.
    kept = {(name, script) for name, scripts in SHARED for script in scripts}
    for script in ALL:
        for node in ast.parse((ROOT / script).read_text()).body:
            name = getattr(node, "name", None)
            if name is None or name in OWN or (name, script) in kept:
                continue
            elsewhere = [other for other in ALL if other != script and defines(other, name)]
            assert not elsewhere, f"{name} is in {script} and {elsewhere}, not in SHARED"


def defines(script, name):
    tree = ast.parse((ROOT / script).read_text())
    return any(getattr(node, "name", None) == name for node in tree.body)


def test_the_servers_read_a_request_alike():
    # rep.py and mrep.py read a request inline in serve(), their own loops, so that
    # the pattern reads on the first screen: those lines are the same text in both.
    def reading(script):
        lines = definition(script, "serve").splitlines()
        first = next(i for i, line in enumerate(lines) if "sock.recv(copy=False)" in line)
        rest = next(i for i, line in enumerate(lines) if "request = frame.bytes" in line)
        return [lines[first], *lines[rest : rest + 3]]

    rep, mrep = reading("rep.py"), reading("mrep.py")
    assert rep == mrep, "\n".join(difflib.unified_diff(rep, mrep, "rep.py", "mrep.py"))
    assert rep[-1].strip() == 'request += b"".join(sock.recv_multipart())'
