"""Ctrl-C and SIGTERM stop every script at once with exit status 0 and no traceback,
also when the script was started with SIGINT ignored, as a shell does for `cmd &`."""

import signal

import pytest
from conftest import ANY_PORT

STARTS = {
    "rep.py": (["--bind", ANY_PORT], "serving sha1 on", "stopped"),
    "msgqueue.py": (["--frontend", ANY_PORT, "--backend", ANY_PORT], "broker up", "stopped"),
    # Connectors need no peer to start: they connect to a port nobody listens on.
    "mrep.py": (["--connect", "tcp://127.0.0.1:9"], "echo server connecting", "stopped"),
    "c.py": (["--connect", "tcp://127.0.0.1:9"], "client connecting", "interrupted, exiting"),
    "mreq.py": (["--connect", "tcp://127.0.0.1:9"], "client connecting", "interrupted, exiting"),
}


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["plain", "started-with-&"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("script", sorted(STARTS))
def test_signal_stops_script_cleanly(spawn, script, signum, ignore_sigint):
    args, ready, last = STARTS[script]
    proc = spawn(script, *args, ignore_sigint=ignore_sigint)
    proc.wait_for(ready)
    proc.send(signum)
    assert proc.wait() == 0
    assert proc.stderr == ""
    assert proc.lines[-1] == f"python (pid={proc.pid}): {last}"


@pytest.mark.parametrize("script", sorted(STARTS))
def test_ctrl_c_twice_still_exits_cleanly(spawn, script):
    args, ready, last = STARTS[script]
    proc = spawn(script, *args)
    proc.wait_for(ready)
    proc.send(signal.SIGINT)
    proc.send(signal.SIGINT)
    assert proc.wait() == 0
    assert proc.stderr == ""
    assert proc.lines[-1] == f"python (pid={proc.pid}): {last}"
