"""The README and the pages of docs/ never drift from the scripts: every command
they show names a script that exists (or a copy of one the same pages make with
`cp`) and flags that script accepts, every sample output line they show is a line
some script really prints (the same patterns the other tests hold the real output
to), every link leads to a file of the repository, the example of "Start your own
from these" runs and names only what the scripts have, and the claims moved out
of the README into docs/ (the mutation score, the benchmark's figures) still match
what they come from."""

import functools
import importlib
import json
import re
import shutil
import subprocess
import sys

from conftest import LINE_FORMATS, ROOT, format_of

README = (ROOT / "README.md").read_text()
DOCS = {f"docs/{path.name}": path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {"README.md": README, **DOCS}
MOVED = ["docs/HOLD.md", "docs/BENCHMARK.md", "docs/MUTATION.md", "docs/LAYOUT.md"]
BLOCK_RE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
SCRIPT_RE = re.compile(r"\bpython3? (\S+\.py)((?: [^|&;]*)?)")
COPY_RE = re.compile(r"\bcp (\S+\.py) (\S+\.py)\b")
HONCHO_PREFIX_RE = re.compile(r"^\d\d:\d\d:\d\d (\S+?)\.\d+ +\| (.*)$")
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
HEADING_RE = re.compile(r"^#+ (.*)$", re.MULTILINE)


def blocks(language, pages=PAGES):
    return [
        body for text in pages.values() for lang, body in BLOCK_RE.findall(text) if lang == language
    ]


def commands(pages=PAGES):
    found = [line.strip() for body in blocks("sh", pages) for line in body.splitlines()]
    found += [
        line.strip()[2:]
        for body in blocks("console", pages)
        for line in body.splitlines()
        if line.strip().startswith("$ ")
    ]
    return found


def copies():
    """Student copies the pages make (`cp rep.py architect.py`): copy -> original."""
    return dict(
        (copy, original) for command in commands() for original, copy in COPY_RE.findall(command)
    )


def output_lines(pages=PAGES):
    lines = []
    for body in blocks("console", pages):
        for raw in body.splitlines():
            line = raw.strip()
            if line.startswith("$ ") or not line:
                continue
            honcho = HONCHO_PREFIX_RE.match(line)
            lines.append(honcho.group(2) if honcho else line)
    return lines


def section(text, heading):
    """The text under a `## heading`, up to the next heading of that level."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def slug(heading):
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@functools.cache
def accepted_flags(script):
    shown = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    return set(re.findall(r"(--[\w-]+)", shown))


def test_every_command_names_a_real_script_and_real_flags():
    made = copies()
    checked = 0
    for command in commands():
        for shown, args in SCRIPT_RE.findall(command):
            script = made.get(shown, shown)  # a copy takes the flags of its original
            assert (ROOT / script).is_file(), f"a page runs {script}, which does not exist"
            flags = set(re.findall(r"(?<!\S)(--[\w-]+)", args))
            assert flags <= accepted_flags(script), f"{command!r}: {flags - accepted_flags(script)}"
            checked += 1
    assert checked >= 10, "the README shows the scripts being run"
    assert made, "the README shows a copy being made and run"


def test_honcho_command_names_procfile_processes():
    procfile = (ROOT / "Procfile").read_text()
    kinds = set(re.findall(r"^(\w+):", procfile, re.MULTILINE))
    scales = [c for c in commands() if "honcho start" in c]
    assert scales
    for command in scales:
        for kind in re.findall(r"(\w+)=\d+", command):
            assert kind in kinds


def test_every_sample_output_line_is_one_a_script_prints():
    for line in output_lines():
        assert format_of(line), f"a page shows a line no script prints: {line!r}"
    shown = output_lines({"README.md": README})
    assert len(shown) >= 20
    assert {format_of(line) for line in shown} == set(LINE_FORMATS), "every script's output"


def test_readme_links_each_page_moved_to_docs():
    linked = {target.partition("#")[0] for target in LINK_RE.findall(README)}
    for page in MOVED:
        assert page in linked, f"the README does not link {page}"
    assert set(DOCS) <= linked, "every page of docs/ is linked from the README"
    for page in linked & set(DOCS):  # one line saying what it holds
        assert re.search(rf"^- \[{re.escape(page)}\]\({re.escape(page)}\): \w", README, re.M)


def test_every_link_leads_to_a_file_of_the_repository():
    anchors = {name: {slug(h) for h in HEADING_RE.findall(text)} for name, text in PAGES.items()}
    for name, text in PAGES.items():
        here = (ROOT / name).parent
        for target in LINK_RE.findall(text):
            if re.match(r"\w+://", target):
                continue
            path, _, anchor = target.partition("#")
            where = (here / path).resolve() if path else ROOT / name
            assert where.is_relative_to(ROOT), f"{name} links outside the repository: {target}"
            assert where.exists(), f"{name} links {target}, which does not exist"
            page = where.relative_to(ROOT).as_posix()
            if anchor and page in anchors:
                assert anchor in anchors[page], f"{name} links {target}: no such heading"
        # Nothing else points out of the repository either (such as ../shared).
        assert "../" not in LINK_RE.sub("]()", text), f"{name} cites a path outside the repo"


def test_mutation_score_and_survivors_are_in_their_page():
    sys.path.insert(0, str(ROOT / "mutation"))
    mutants = importlib.import_module("mutants")
    total, survivors = len(mutants.MUTANTS), mutants.SURVIVORS
    page = DOCS["docs/MUTATION.md"]
    assert f"lists {total} small, plausible bugs" in page
    assert f"{total - len(survivors)} of the {total} are killed" in page
    assert f"The other {len(survivors)} change nothing a test can see" in page
    for name in survivors:
        assert f"`{name}`" in page, name
    assert "mutation/run.py" in {script for c in commands() for script, _ in SCRIPT_RE.findall(c)}


def test_benchmark_figures_are_the_recorded_run():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = importlib.import_module("bench")
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    page = DOCS["docs/BENCHMARK.md"]
    assert bench.table(results) in [body.rstrip("\n") for body in blocks("text", {"": page})]
    ran_on = results["machine"]
    assert f"{ran_on['cores']}-core {ran_on['cpu']}" in page
    assert f"Python {ran_on['python']}, pyzmq {ran_on['pyzmq']}, libzmq {ran_on['libzmq']}" in page
    cost, scaling = results["broker_cost"], results["scaling"]["points"]
    assert f"{cost['cpu_ratio']:.2f}x the CPU per request" in page
    eight = f"{scaling[-1]['efficiency']:.0%} of 8 times one"
    assert scaling[-1]["servers"] == 8 and eight in page and eight in README
    slow = results["slow_server"]
    said = " ".join(README.split())
    assert f"{slow['all_fast']['replies_per_s']:.0f} replies/s with four servers" in said
    assert f"{slow['one_slow']['replies_per_s']:.0f} replies/s with one of them" in said
    assert f"with {slow['one_slow']['resends']} resends in {slow['seconds']:g} s" in said


def test_start_your_own_names_the_functions_to_change_and_its_example_works():
    text = section(README, "Start your own from these")
    for name in ("answer(request)", "new_request()", "check_reply(request, reply)"):
        assert f"`{name}`" in text, name
    for needed in ("rep.py", "c.py", "msgqueue.py", "mrep.py", "--connect tcp://127.0.0.1:5559"):
        assert needed in text, needed
    runs = {script for c in commands({"": text}) for script, _ in SCRIPT_RE.findall(c)}
    assert "tools/faults.py" in runs, "it shows the fault check being run"
    # The README's own code: the functions of architect.py and player.py...
    found = {}
    example = "\n".join(body for lang, body in BLOCK_RE.findall(text) if lang == "python")
    exec(example, {"time": importlib.import_module("time")}, found)
    answer, new_request, check_reply = found["answer"], found["new_request"], found["check_reply"]
    assert "same `answer()`, word for word" in text  # worker.py's is architect.py's
    for _ in range(3):
        request = new_request()
        assert isinstance(request, bytes) and isinstance(answer(request), bytes)
        assert check_reply(request, answer(request)) is True
        assert not check_reply(request, b"not " + answer(request))


def test_what_a_class_may_delete_names_what_the_scripts_have():
    # Every option, constant and function the section names (`REQ_RELAXED`,
    # `stop_requests()`) is in the scripts, so a student finds what it means.
    text = section(README, "Start your own from these")
    sources = "\n".join((ROOT / script).read_text() for script in LINE_FORMATS)
    names = re.findall(r"`([A-Z][A-Z_]+|[a-z_]+\(\))`", text)
    assert len(names) >= 10
    for name in names:
        assert name.removesuffix("()") in sources, f"the README names {name}: no script has it"


def test_part1_ctrl_c_shows_what_a_slow_and_a_fast_client_say():
    text = section(README, "Part 1: many clients, one server")
    said = [line for line in output_lines({"": text}) if "resending" in line]
    assert any(" no server reachable for 2.5 s, resending (retry 1)" in line for line in said)
    assert any(" no reply within 2.5 s, resending (retry 1)" in line for line in said)


def test_ci_runs_the_readme_test_command_then_the_mutation_check(tmp_path):
    # .ci/run itself, in a copy of the repository whose README's test command
    # only leaves a trace (and a stand-in for the Python it would install), on a
    # PATH with no apt-get and no other Python: what it runs is what it finds.
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", repo / ".ci" / "run")
    shown = blocks("sh", {"README.md": README})
    (command,) = [body for body in shown if body.strip().endswith("python -m pytest")]
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
    core = "-m pytest tests/test_clients.py tests/test_brokered.py tests/test_silent.py"
    core += " tests/test_signals.py tests/test_servers.py"
    assert (repo / "trace").read_text() == f"readme\n{core}\nmutation/run.py\n"
    assert "<!-- demo-command -->" in README
