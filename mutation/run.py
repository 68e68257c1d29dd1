"""The mutation check: does the suite catch the bugs it exists for?

Each mutant in mutants.py is one small, plausible bug in one script. For each,
this copies the repository to a temporary directory, puts the bug in, and runs
the tests named for it there (the real scripts, as subprocesses, as always).
A mutant is killed when one of those tests fails; it survives when all pass.

    python mutation/run.py                 # every mutant, then the score
    python mutation/run.py c.no-correlate  # some, by name (or a prefix: "c.")
    python mutation/run.py --list          # names, scripts and what each breaks

Exit status 0 only if every mutant was killed but those listed in SURVIVORS
(mutants.py), each with the reason no test can see it. Two mutants are checked at a
time, each running its tests one at a time (the suite's load: two tests at a
time) and stopping at the first failure.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutants import MUTANTS, SURVIVORS

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "*_cache", "__pycache__")
MUTANT_TIMEOUT = 300  # seconds for one mutant's tests, all told; over it counts as killed
AT_ONCE = 2  # mutants checked at a time, one test each at a time: the suite's load (-n 2)
TEST_TIMEOUT = 90  # seconds for one test (a mutant that hangs a test is killed, not waited on)
FAILED_RE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def apply(mutant, tree):
    """Put the mutant's bug into the copy at `tree`. The edit must match exactly once,
    so that a change to a script cannot quietly turn a mutant into a no-op."""
    path = tree / mutant.script
    source = path.read_text()
    found = source.count(mutant.old)
    if found != 1:
        raise SystemExit(f"mutant {mutant.name}: its text occurs {found} times in {mutant.script}")
    path.write_text(source.replace(mutant.old, mutant.new))


def run_tests(mutant, tree):
    """(killed, what failed) after running the mutant's tests in `tree`."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-n", "0", f"--timeout={TEST_TIMEOUT}", *mutant.tests]
    proc = subprocess.Popen(
        command, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=MUTANT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True, f"tests still running after {MUTANT_TIMEOUT} s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    failed = FAILED_RE.findall(output)
    if proc.returncode == 0:
        return False, "all passed"
    if failed:  # 1, or 2 when -x stopped the run at the first failure
        return True, ", ".join(failed)
    # Nothing failed, yet pytest did not pass: the command itself is wrong (such as
    # a test that does not exist). That says nothing about the mutant: stop.
    raise SystemExit(f"mutant {mutant.name}: pytest exited {proc.returncode}:\n{output}")


def check(mutant):
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        tree = Path(tmp) / "repo"
        shutil.copytree(ROOT, tree, ignore=SKIPPED)
        apply(mutant, tree)
        return run_tests(mutant, tree)


def timed_check(mutant):
    began = time.monotonic()
    killed, failed = check(mutant)
    return killed, failed, time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description="Run the mutation check.")
    parser.add_argument("names", nargs="*", help="mutants to run, by name or prefix")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.names or any(m.name.startswith(n) for n in args.names)]
    if not chosen:
        parser.error("no mutant has such a name; see --list")
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:28} {mutant.breaks}")
        return 0

    survivors = []
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        running = {pool.submit(timed_check, mutant): mutant for mutant in chosen}
        for number, done in enumerate(concurrent.futures.as_completed(running), 1):
            mutant = running[done]
            killed, failed, took = done.result()
            verdict = "killed  " if killed else "SURVIVED"
            print(f"[{number}/{len(chosen)}] {verdict} {mutant.name} ({took:.0f} s): {failed}",
                  flush=True)  # fmt: skip
            if not killed:
                survivors.append(mutant)
    killed = len(chosen) - len(survivors)
    minutes = (time.monotonic() - started) / 60
    print(f"\nscore: {killed} of {len(chosen)} mutants killed "
          f"({100 * killed / len(chosen):.0f}%) in {minutes:.1f} min")  # fmt: skip
    for mutant in survivors:
        why = SURVIVORS.get(mutant.name, "NOT EXPECTED: a test is missing or too weak")
        print(f"survived: {mutant.name} ({mutant.breaks}): {why}")
    unexpected = [m.name for m in survivors if m.name not in SURVIVORS]
    stale = [m.name for m in chosen if m.name in SURVIVORS and m not in survivors]
    for name in stale:
        print(f"killed, though listed as a survivor: {name} (update SURVIVORS and the README)")
    return 1 if unexpected or stale else 0


if __name__ == "__main__":
    sys.exit(main())
