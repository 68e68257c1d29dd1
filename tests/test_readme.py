"""The README never drifts from the scripts: every command it shows names a script
that exists and flags that script accepts, and every sample output line it shows
is a line some script really prints (the same patterns the other tests hold the
real output to)."""

import re
import shutil
import subprocess
import sys

from conftest import LINE_FORMATS, ROOT, format_of

README = (ROOT / "README.md").read_text()
BLOCK_RE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
SCRIPT_RE = re.compile(r"\bpython3? (\S+\.py)((?: [^|&;]*)?)")
HONCHO_PREFIX_RE = re.compile(r"^\d\d:\d\d:\d\d (\S+?)\.\d+ +\| (.*)$")


def blocks(language):
    return [body for lang, body in BLOCK_RE.findall(README) if lang == language]


def commands():
    found = [line.strip() for body in blocks("sh") for line in body.splitlines()]
    found += [
        line.strip()[2:]
        for body in blocks("console")
        for line in body.splitlines()
        if line.strip().startswith("$ ")
    ]
    return found


def output_lines():
    lines = []
    for body in blocks("console"):
        for raw in body.splitlines():
            line = raw.strip()
            if line.startswith("$ ") or not line:
                continue
            honcho = HONCHO_PREFIX_RE.match(line)
            lines.append(honcho.group(2) if honcho else line)
    return lines


def accepted_flags(script):
    shown = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    return set(re.findall(r"(--[\w-]+)", shown))


def test_every_command_names_a_real_script_and_real_flags():
    checked = 0
    for command in commands():
        for script, args in SCRIPT_RE.findall(command):
            assert (ROOT / script).is_file(), f"README runs {script}, which does not exist"
            flags = set(re.findall(r"(?<!\S)(--[\w-]+)", args))
            assert flags <= accepted_flags(script), f"{command!r}: {flags - accepted_flags(script)}"
            checked += 1
    assert checked >= 10, "the README shows the scripts being run"


def test_honcho_command_names_procfile_processes():
    procfile = (ROOT / "Procfile").read_text()
    kinds = set(re.findall(r"^(\w+):", procfile, re.MULTILINE))
    scales = [c for c in commands() if "honcho start" in c]
    assert scales
    for command in scales:
        for kind in re.findall(r"(\w+)=\d+", command):
            assert kind in kinds


def test_every_sample_output_line_is_one_a_script_prints():
    lines = output_lines()
    assert len(lines) >= 20
    for line in lines:
        assert format_of(line), f"README shows a line no script prints: {line!r}"
    shown = {format_of(line) for line in lines}
    assert shown == set(LINE_FORMATS), "every script's output is shown"


def test_ci_runs_the_readme_test_command_then_the_mutation_check(tmp_path):
    # .ci/run itself, in a copy of the repository whose README's test command
    # only leaves a trace (and a stand-in for the Python it would install), on a
    # PATH with no apt-get and no other Python: what it runs is what it finds.
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", repo / ".ci" / "run")
    (command,) = [body for body in blocks("sh") if body.strip().endswith("python -m pytest")]
    trace = (
        "mkdir -p .venv/bin && echo readme >> trace"
        " && printf '#!/bin/sh\\necho \"$*\" >> trace\\n' > .venv/bin/python"
        " && chmod +x .venv/bin/python"
    )
    (repo / "README.md").write_text(README.replace(command, trace + "\n"))
    bin_dir.mkdir()
    for tool in ("bash", "awk", "rm", "id", "dirname", "mkdir", "chmod"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").write_text("#!/bin/sh\n")  # finds no other Python
    (bin_dir / "python3").chmod(0o755)
    run = subprocess.run(
        ["bash", ".ci/run"],
        cwd=repo,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (repo / "trace").read_text() == "readme\nmutation/run.py\n"
    assert "<!-- demo-command -->" in README
