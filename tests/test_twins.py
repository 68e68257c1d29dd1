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
CLIENTS = ["c.py", "mreq.py"]
ALL = [*SERVERS_AND_BROKER, *CLIENTS]
SHARED = [
    ("stop_printing", ALL),
    ("stop_requests", ALL),
    ("check_endpoint", ALL),
    ("refuse", ALL),
    ("say", SERVERS_AND_BROKER),
    ("say", CLIENTS),
    ("printable", ["rep.py", "mrep.py"]),
    ("printable", CLIENTS),
    ("raise_open_file_limit", ["rep.py", "msgqueue.py"]),
    ("connect_each", ["c.py", "mreq.py", "mrep.py"]),
    ("connect_socket", CLIENTS),
    ("Requester", CLIENTS),
]


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
