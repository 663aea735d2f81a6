"""Per-module kill rates of the last mutation run (``make mutation``; results in tests/MUTATION.md).

    .venv/bin/python bench/mutation_report.py                     # the table
    .venv/bin/python bench/mutation_report.py --survivors         # ... and every open survivor, with its diff line
    .venv/bin/python bench/mutation_report.py --survivors --module business_case

mutmut (``make mutation``) leaves one ``mutants/cxvalue/<module>.py.meta`` per mutated module,
with an exit code per mutant: 1 or 3 killed (a test failed), 0 survived, 33 or 5 no test reached
the function, 36 and friends a timeout (counted as killed: the mutant made a test run 15 times
longer than it should), None not run yet. ``tests/mutation_equivalent.txt`` names the mutants
reviewed as equivalent (the mutated program behaves the same for every input the code can be
given: a message's wording, a default never used, arithmetic that gives the same number), one
``<mutant name>  <reason>`` a line.

The kill rate is ``killed / (run - equivalent)``: mutants not run are reported as such and left
out, so a partly run module says so instead of looking better or worse than it is. A module whose
tests did not all run (no meta file) is reported as not measured. Exit code 0 when every measured
module kills at least ``--threshold`` (85%) of its non-equivalent mutants, else 1.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# not loop: since closing_the_loop.py was split out of it, loop.py only re-exports (no function to mutate)
MODULES = ("business_case", "linkage", "value", "scorecard", "drivers", "closing_the_loop", "movers",
           "failure_demand", "goals", "btyd", "purchases")
KILLED = {1, 3, 36, 24, -24, 152, 255}
TIMEOUT = {36, 24, -24, 152, 255}
SURVIVED = {0}
NO_TESTS = {33, 5}


def equivalents(path: Path) -> dict[str, str]:
    """``{mutant name: reason}`` from the reviewed list (``#`` starts a comment line)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        out[name] = reason.strip()
    return out


def tally(exit_codes: dict[str, int | None], equivalent: dict[str, str]) -> dict[str, object]:
    """Counts of one module's mutants, and its kill rate over the non-equivalent mutants run."""
    run = {k: v for k, v in exit_codes.items() if v is not None}
    eq = [k for k in run if k in equivalent]
    killed = [k for k, v in run.items() if v in KILLED and k not in equivalent]
    timeouts = [k for k, v in run.items() if v in TIMEOUT and k not in equivalent]
    open_ = sorted(k for k, v in run.items() if v not in KILLED and k not in equivalent)
    no_tests = [k for k in open_ if run[k] in NO_TESTS]
    denominator = len(run) - len(eq)
    return {"mutants": len(exit_codes), "run": len(run), "killed": len(killed), "timeouts": len(timeouts),
            "equivalent": len(eq), "survived": len(open_), "no_tests": len(no_tests),
            "not_run": len(exit_codes) - len(run),
            "kill_rate": (len(killed) / denominator) if denominator else float("nan"), "open": open_}


def _functions(mutated_source: Path) -> dict[str, str]:
    """Source of every function of a mutated module, by name (originals end in ``__mutmut_orig``)."""
    text = mutated_source.read_text()
    lines = text.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno])
            for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def diff_line(functions: dict[str, str], mutant: str) -> str:
    """The changed line of a mutant, ``- original`` / ``+ mutant`` (first change only)."""
    local = mutant.rsplit(".", 1)[-1]
    base = local.rsplit("__mutmut_", 1)[0]
    orig, new = functions.get(base + "__mutmut_orig"), functions.get(local)
    if orig is None or new is None:
        return "(source not found)"
    a = orig.splitlines()[1:]  # the def line carries the mutant's own name
    b = new.splitlines()[1:]
    removed = [line.strip() for line in difflib.ndiff(a, b) if line.startswith("- ")]
    added = [line.strip() for line in difflib.ndiff(a, b) if line.startswith("+ ")]
    if not removed and not added:
        head_a, head_b = orig.splitlines()[0], new.splitlines()[0]
        return f"- {head_a.split('(', 1)[1].strip()}\n      + {head_b.split('(', 1)[1].strip()}"
    return f"- {removed[0][2:] if removed else ''}\n      + {added[0][2:] if added else ''}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    ap.add_argument("--equivalent", type=Path, default=ROOT / "tests" / "mutation_equivalent.txt")
    ap.add_argument("--survivors", action="store_true", help="list every open survivor with its changed line")
    ap.add_argument("--module", action="append", help="only this module (repeatable)")
    ap.add_argument("--threshold", type=float, default=0.85)
    args = ap.parse_args(argv)

    equivalent = equivalents(args.equivalent)
    modules = args.module or list(MODULES)
    header = f"{'module':<17}{'mutants':>8}{'run':>7}{'killed':>8}{'(timeout)':>10}{'equiv.':>8}{'survived':>9}" \
             f"{'(no test)':>10}{'not run':>8}{'kill rate':>10}"
    print(header)
    print("-" * len(header))
    failing, reports = [], {}
    for module in modules:
        meta = args.mutants / "cxvalue" / f"{module}.py.meta"
        if not meta.exists():
            if (ROOT / "cxvalue" / f"{module}.py").exists():
                print(f"{module:<17}{'not measured':>30}")
                failing.append(module)
            continue
        t = tally(json.loads(meta.read_text())["exit_code_by_key"], equivalent)
        reports[module] = t
        rate = t["kill_rate"]
        partial = " (partial)" if t["not_run"] else ""
        shown = f"{rate:>10.1%}{partial}" if t["run"] else f"{'-':>10} (not run)"
        print(f"{module:<17}{t['mutants']:>8}{t['run']:>7}{t['killed']:>8}{t['timeouts']:>10}{t['equivalent']:>8}"
              f"{t['survived']:>9}{t['no_tests']:>10}{t['not_run']:>8}{shown}")
        if not t["run"] or t["not_run"] or not rate >= args.threshold:
            failing.append(module)
    print(f"\nkill rate = killed / (run - equivalent); equivalent mutants: {args.equivalent.relative_to(ROOT)}; "
          f"threshold {args.threshold:.0%}")
    if failing:
        print("below the threshold, partly run or not measured: " + ", ".join(failing))
    if args.survivors:
        for module, t in reports.items():
            if not t["open"]:
                continue
            functions = _functions(args.mutants / "cxvalue" / f"{module}.py")
            print(f"\n## {module}: {len(t['open'])} open")
            for name in t["open"]:
                print(f"  {name}\n      {diff_line(functions, name)}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
