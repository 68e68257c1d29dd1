"""Print the oldest and the newest Python 3.9 to 3.13 on this machine, one path a
line: from python3.N on PATH and from pyenv's versions, wherever pyenv keeps them.
Used by .ci/run to run the suite under both; prints nothing if none is found."""

import glob
import os
import shutil
import subprocess

SUPPORTED = ((3, 9), (3, 13))


def candidates():
    found = set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found.update(glob.glob(os.path.join(folder, "python3.[0-9]*")))
    pyenv = shutil.which("pyenv")
    root = ""
    if pyenv:
        asked = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        root = asked.stdout.strip()
    root = root or os.path.expanduser("~/.pyenv")
    found.update(glob.glob(os.path.join(root, "versions", "*", "bin", "python3")))
    return sorted(found)


def version(python):
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None  # e.g. a pyenv shim for a version that is not installed
    return tuple(map(int, out)) if len(out) == 2 else None


def main():
    by_version = {}
    for python in candidates():
        found = version(python)
        if found and SUPPORTED[0] <= found <= SUPPORTED[1]:
            by_version.setdefault(found, python)
    if by_version:
        for chosen in dict.fromkeys([min(by_version), max(by_version)]):
            print(by_version[chosen])


if __name__ == "__main__":
    main()
