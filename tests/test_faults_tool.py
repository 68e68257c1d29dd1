"""tools/faults.py proves an assignment keeps every guarantee (issue 19, item 4).

A student's assignment changes only the marked functions: answer(request) in the
servers, new_request() and check_reply(request, reply) in the clients. These tests
make such an assignment the way a student would, by copying the scripts under new
names and replacing just those functions (found by the AST, so nothing else in the
copies can change), then run the tool on the copies: the assignment must pass every
fault, and a copy with a bug put into one marked function must fail.

The tool runs as a process of its own, in a session of its own; on any failure
here it is sent SIGTERM, on which it kills every process it started.
"""

import ast
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

TOOL = ROOT / "tools" / "faults.py"
COPIES = {  # the student's file: (the script it is copied from, the functions it replaces)
    "player.py": ("c.py", ["new_request", "check_reply"]),
    "brokered_player.py": ("mreq.py", ["new_request", "check_reply"]),
    "architect.py": ("rep.py", ["answer"]),
    "worker.py": ("mrep.py", ["answer"]),
}

# The assignment: a request is a tour (stops to visit, and an id no other request
# has); the answer is the tour's length with the id, which the client recomputes. A
# reply to anyone else's request, or an old one of its own, names another id: a mismatch.
ASSIGNMENT = {
    "new_request": '''
        def new_request():
            """A tour of one to five stops, and an id of its own."""
            import random
            import uuid

            stops = ",".join(str(random.randrange(1, 100)) for _ in range(random.randrange(1, 6)))
            return f"tour {stops} id={uuid.uuid4().hex}".encode()
    ''',
    "check_reply": '''
        def check_reply(request, reply):
            """The reply is the tour's length, with the tour's own id."""
            _, stops, ident = request.decode().split(" ")
            return reply == f"length {sum(int(s) for s in stops.split(','))} {ident}".encode()
    ''',
    "answer": '''
        def answer(request):
            """The length of the tour: the sum of its stops, with its id."""
            _, stops, ident = request.decode().split(" ")
            return f"length {sum(int(s) for s in stops.split(','))} {ident}".encode()
    ''',
}
NEVER_SATISFIED = """
    def check_reply(request, reply):
        return False
"""
OFF_BY_ONE = """
    def answer(request):
        _, stops, ident = request.decode().split(" ")
        return f"length {sum(int(s) for s in stops.split(',')) + 1} {ident}".encode()
"""
VERDICT_RE = re.compile(r"^(PASS|FAIL|SKIP) ([a-e])\. ", re.MULTILINE)


def replace_functions(source, replacements):
    """`source` with each named top-level function's text replaced by new source."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans = []
    for name, new in replacements.items():
        found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
        assert len(found) == 1, f"no single top-level def {name}() to replace"
        node = found[0]
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        spans.append((first, node.end_lineno, textwrap.dedent(new).strip("\n") + "\n"))
    for first, last, new in sorted(spans, reverse=True):  # from the end: line numbers hold
        lines[first - 1 : last] = [new]
    return "".join(lines)


def others(source, names):
    """Every top-level statement but the functions named, as AST dumps."""
    return [
        ast.dump(node)
        for node in ast.parse(source).body
        if not (isinstance(node, ast.FunctionDef) and node.name in names)
    ]


def make_copy(directory, name, **changes):
    """Copy the script `name` is made from, with the assignment (or `changes`) in it."""
    script, functions = COPIES[name]
    original = (ROOT / script).read_text()
    new = {f: changes.get(f, ASSIGNMENT[f]) for f in functions}
    copied = replace_functions(original, new)
    assert others(copied, functions) == others(original, functions), "only those changed"
    for function in functions:
        assert f"def {function}(" in copied
    path = directory / name
    path.write_text(copied)
    return path


@pytest.fixture
def copies(tmp_path):
    """The student's four files, the assignment in each, in tmp_path."""
    return {name: make_copy(tmp_path, name) for name in COPIES}


def run_tool(cwd, *args, timeout=150):
    """Run tools/faults.py in cwd; (exit status, stdout, stderr). On a failure or a timeout
    here, SIGTERM makes the tool kill all it started; SIGKILL is the last resort."""
    tool = subprocess.Popen(
        [sys.executable, str(TOOL), *args], cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = tool.communicate(timeout=timeout)
    finally:
        if tool.poll() is None:
            tool.send_signal(signal.SIGTERM)
            try:
                tool.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(tool.pid, signal.SIGKILL)
                tool.communicate()
    print(out, err)  # shown when a test fails
    return tool.returncode, out, err


def verdicts(out):
    return dict((letter, word) for word, letter in VERDICT_RE.findall(out))


def test_copies_change_only_the_marked_functions_and_name_themselves(copies):
    for name, path in copies.items():
        source = path.read_text()
        script, functions = COPIES[name]
        for function in functions:
            assert textwrap.dedent(ASSIGNMENT[function]).strip() in source
        flag, doing = ("--bind", "bind") if name == "architect.py" else ("--connect", "connect to")
        result = subprocess.run(
            [sys.executable, str(path), flag, "nonsense"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert result.stderr.startswith(f"{name}: cannot {doing} nonsense:"), result.stderr


def test_part1_assignment_survives_every_fault(copies, tmp_path):
    status, out, _ = run_tool(tmp_path, "--client", "player.py", "--server", "architect.py")
    assert verdicts(out) == {"a": "PASS", "b": "PASS", "c": "SKIP", "d": "SKIP", "e": "SKIP"}
    assert status == 0
    assert "player.py asking architect.py directly (Part 1)" in out


def test_broker_assignment_survives_every_fault(copies, tmp_path):
    status, out, _ = run_tool(tmp_path, "--client", "player.py", "--server", "worker.py")
    assert verdicts(out) == dict.fromkeys("abcde", "PASS")
    assert status == 0
    assert "player.py asking worker.py through msgqueue.py" in out


def test_a_client_that_rejects_every_reply_fails(tmp_path):
    make_copy(tmp_path, "brokered_player.py", check_reply=NEVER_SATISFIED)
    make_copy(tmp_path, "worker.py")
    args = ["--client", "brokered_player.py", "--server", "worker.py", "--only", "a"]
    status, out, _ = run_tool(tmp_path, *args)
    assert status == 1
    assert verdicts(out) == {"a": "FAIL"}
    assert re.search(r"^FAIL a\..*exited 1, done, 0 replies verified, 40 mismatched", out, re.M)
    assert "mismatch:" in out


def test_a_server_with_a_wrong_answer_fails(tmp_path):
    make_copy(tmp_path, "player.py")
    make_copy(tmp_path, "architect.py", answer=OFF_BY_ONE)
    args = ["--client", "player.py", "--server", "architect.py", "--only", "b"]
    status, out, _ = run_tool(tmp_path, *args)
    assert status == 1
    assert verdicts(out) == {"b": "FAIL"}
    assert re.search(r"^FAIL b\..*exited 1, done, 0 replies verified, 40 mismatched", out, re.M)


def test_the_tool_refuses_a_missing_file_in_one_line(tmp_path):
    status, out, err = run_tool(tmp_path, "--client", "nowhere.py", timeout=30)
    assert status == 1
    assert err == "faults.py: nowhere.py: no such file\n"
    assert out == ""
