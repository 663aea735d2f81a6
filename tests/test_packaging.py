"""The install files agree with each other."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].strip().lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r for r in pip if not r.startswith("-e")}
    assert {r.replace(" ", "") for r in listed} == {r.replace(" ", "") for r in wanted}


def test_constraints_pin_every_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    extras = project["optional-dependencies"]
    for req in project["dependencies"] + extras["dev"] + extras["spark"]:
        assert _name(req).replace("_", "-") in pins, f"{req} is not pinned in constraints.txt"
    assert "pyarrow-hotfix" in pins  # ibis-framework[duckdb] extra resolved
    assert "py4j" in pins  # pyspark's own dependency resolved


def test_spark_is_installed_for_the_tests_only():
    """make test installs the spark extra (tests/test_spark.py needs it where Java is), make report does not;
    make lock resolves it with the rest."""
    makefile = (ROOT / "Makefile").read_text()
    test_line = re.search(r"^test:(.*)$", makefile, re.M).group(1)
    report_line = re.search(r"^report:(.*)$", makefile, re.M).group(1)
    stamp = re.search(r"^(\$\(\w+\)):.*\n(?:\t.*\n)*?\t.*\.\[dev,spark\]", makefile, re.M).group(1)
    assert stamp in test_line and stamp not in report_line
    assert re.search(r"^lock:.*\n(?:\t.*\n)*?\t.*pip install .*\.\[dev,spark\]", makefile, re.M)


def test_every_test_dependency_is_installed():
    """The dev extra is what the suite needs: each one importable, so that no test module can skip
    itself whole for want of one (tests/test_excel.py recalculates the workbook with formulas)."""
    from importlib.metadata import PackageNotFoundError, version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing = []
    for req in project["optional-dependencies"]["dev"]:
        try:
            version(_name(req))
        except PackageNotFoundError:
            missing.append(req)
    assert not missing, f"install the dev extra (pip install -c constraints.txt -e '.[dev]'): missing {missing}"


def test_make_test_slow_selects_what_it_names():
    """`make test-slow` runs `pytest -m slow` and `make test` `-m "not slow"`: the marker is registered
    and some test carries it, so the slow target is never an empty run (pytest exit 5)."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-slow:.*\n\t.*pytest .*-m slow\b", makefile, re.M)
    assert re.search(r"^test:.*\n\t.*pytest .*-m \"not slow\"", makefile, re.M)
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)
    slow = re.compile(r"^(@pytest\.mark\.slow\b|pytestmark\s*=.*\bpytest\.mark\.slow\b)", re.M)
    marked = [p.name for p in (ROOT / "tests").glob("test_*.py") if slow.search(p.read_text())]
    assert marked, "no test is marked slow: make test-slow would select nothing"
