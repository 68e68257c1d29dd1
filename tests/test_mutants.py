"""The mutation check's list stays true to the code: each mutant's edit applies
to exactly one place in its script, the tests it names exist, and the README
names every mutant that is allowed to survive. (Running the mutants themselves
is mutation/run.py's job: CI runs it after the suite.)"""

import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "mutation"))
from mutants import MUTANTS, SURVIVORS  # noqa: E402


def test_every_mutant_edits_one_place_in_its_script():
    for mutant in MUTANTS:
        source = (ROOT / mutant.script).read_text()
        assert source.count(mutant.old) == 1, mutant.name
        assert mutant.old != mutant.new, mutant.name
    assert len({m.name for m in MUTANTS}) == len(MUTANTS), "names are unique"


def test_every_test_a_mutant_names_exists():
    tests = sorted({test for mutant in MUTANTS for test in mutant.tests})
    collect = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", *tests],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stdout + collect.stderr


def test_readme_lists_the_survivors():
    readme = (ROOT / "README.md").read_text()
    assert set(SURVIVORS) <= {m.name for m in MUTANTS}
    for name in SURVIVORS:
        assert f"`{name}`" in readme, name
    assert f"{len(MUTANTS) - len(SURVIVORS)} of the {len(MUTANTS)} are killed" in readme
