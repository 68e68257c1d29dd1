"""The README's demo: honcho runs the Procfile (broker, 2 servers, 3 clients) and
Ctrl-C stops all of it cleanly. Ports come from FRONT_PORT/BACK_PORT, so a demo
already running on the default ports is left alone."""

import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path

import pytest
from conftest import Proc


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def honcho_proc():
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent))
    if honcho is None:
        pytest.skip("honcho is not installed (pip install '.[demo]')")
    env = dict(
        os.environ,
        FRONT_PORT=str(free_port()),
        BACK_PORT=str(free_port()),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    proc = Proc(honcho, "start", "-c", "server=2,client=3", env=env, program=[honcho])
    try:
        yield proc
    finally:
        proc.reap()


def test_demo_runs_everything_and_ctrl_c_stops_it_cleanly(honcho_proc):
    for n in (1, 2, 3):
        honcho_proc.wait_for(rf"client\.{n} +\| .* received the original data: ", count=2)
    for n in (1, 2):
        honcho_proc.wait_for(rf"server\.{n} +\| .*: connected to broker at ")
    honcho_proc.send(signal.SIGINT)
    assert honcho_proc.wait() in (0, 130)  # honcho's own status for "stopped by Ctrl-C"
    stopped = honcho_proc.matches(re.compile(r".*system +\| (\w+\.\d) stopped \(rc=(-?\d+)\)"))
    assert sorted(m.group(1) for m in stopped) == [
        "broker.1",
        "client.1",
        "client.2",
        "client.3",
        "server.1",
        "server.2",
    ]
    assert {m.group(2) for m in stopped} == {"0"}
    assert "Traceback" not in "\n".join(honcho_proc.lines) + honcho_proc.stderr
