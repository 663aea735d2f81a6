"""Coverage of the linkage models' 95% intervals over a grid of harder synthetic worlds.

    .venv/bin/python bench/coverage_grid.py                     # the full grid (about 50 min on 1 free core)
    .venv/bin/python bench/coverage_grid.py --customers 2000 --worlds 20 --no-md   # quick look
    .venv/bin/python bench/coverage_grid.py --summary-only      # rebuild bench/COVERAGE.md from the records

The grid is confounding strength (``--confounding``, default 0, 0.6, 1.2: none / moderate, the
default world / strong) x world size (``--customers``, default 2,000 / 20,000 / 200,000, with
``--worlds`` 100 / 50 / 30 worlds each) x how noisily pre-survey spend measures the confounder
(``--spend-noise``, default 0 only: the worlds as they are). Each world is fitted exactly as
bench/coverage.py (and ``tests/test_linkage.py::_fit``) does: ``RevenueModel``,
``CostToServeModel``, ``ChurnModel``, reference group passive, truth ``TRUE_EFFECTS``.

World seeds come from ``numpy.random.SeedSequence(--seed)`` per size; the same seeds are used at
every confounding level and spend noise (paired comparisons). Worlds run size by size, smallest
first, world by world across the cells of a size, so a run that stops early (``--max-minutes``,
Ctrl-C) leaves every cell of a size with about the same number of worlds. Every finished world is
appended at once to ``--records`` (default ``bench/out/coverage_grid.csv``, not in git); a rerun
skips the worlds already there, so an interrupted grid resumes where it stopped.

Per cell and model/group it reports coverage with its Wilson 95% interval, the mean log bias
with its Monte Carlo standard error, the mean reported standard error SE(log), bias / SE and
sd / SE, and rewrites the grid block of ``bench/COVERAGE.md`` (``--no-md`` to skip). Exit code 0.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MD = HERE / "COVERAGE.md"
GRID_START = "<!-- grid:start (written by bench/coverage_grid.py; do not edit by hand) -->"
GRID_END = "<!-- grid:end -->"
DEFAULT_RECORDS = HERE / "out" / "coverage_grid.csv"
CELL = ["spend_noise", "confounding", "customers"]

# bench/coverage.py by path ("coverage" is also the name of a test-coverage package)
_spec = importlib.util.spec_from_file_location("cxvalue_bench_coverage", HERE / "coverage.py")
cov = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cov
_spec.loader.exec_module(cov)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def run_task(task: tuple) -> list[dict]:
    """One world of one cell -> its record rows (one per model and group; failures included)."""
    spend_noise, confounding, customers, index, seed = task
    res = cov.run_world((index, seed, customers, {"confounding": confounding, "spend_noise": spend_noise}))
    base = {"spend_noise": spend_noise, "confounding": confounding, "customers": customers, "world": index,
            "seed": seed, "respondents": res.get("respondents"), "seconds": res["seconds"]}
    rows = [dict(base, **{("group_customers" if k == "customers" else k): v for k, v in r.items()
                          if k not in ("world", "seed")}, error="") for r in res["rows"]]
    for e in res["errors"]:
        for name in (cov.MODELS if e["model"] == "*" else [e["model"]]):
            for g in cov.GROUPS:
                rows.append(dict(base, model=name, group=g, error=e["error"][:300]))
    if not rows:  # nothing at all: keep a marker so the world is not rerun
        rows.append(dict(base, model="*", group="*", error="no rows"))
    return rows


# --------------------------------------------------------------------------- summary


def cell_summary(rec: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, model and group: coverage (Wilson), bias and its Monte Carlo error, SE."""
    out = []
    for key, cell in rec.groupby(CELL, sort=True):
        ok = cell[(cell["error"].fillna("") == "") & (cell["model"] != "*")]
        errors = [{"model": m} for m in cell.loc[cell["error"].fillna("") != "", "model"]]
        rows = ok.assign(covered=ok["covered"].map({True: True, False: False, "True": True, "False": False}),
                         warnings=ok["warnings"].fillna("").astype(str))
        s = cov.summarise(rows, [e for e in errors if e["model"] != "*"], int(cell["world"].nunique()))
        for _, r in s.iterrows():
            n = int(r["worlds"])
            out.append(dict(zip(CELL, key), **r.to_dict(),
                            bias_mc_se=r["sd_log"] / math.sqrt(n) if n > 1 else float("nan"),
                            bias_over_se=r["bias_log"] / r["mean_se_log"] if r["mean_se_log"] else float("nan")))
    return pd.DataFrame(out)


def _pred_coverage(delta: float) -> float:
    """Coverage of a correct-width 95% interval whose estimate is off by ``delta`` SEs."""
    from scipy import stats

    return float(stats.norm.cdf(cov.Z - delta) - stats.norm.cdf(-cov.Z - delta))


def _delta_for(coverage: float) -> float:
    from scipy import optimize

    return float(optimize.brentq(lambda d: _pred_coverage(d) - coverage, 0.0, 10.0))


def _label(r: pd.Series) -> str:
    return f"{r['model']} / {r['group']}"


def _cell_head(keys: list[tuple]) -> str:
    noise = len({k[0] for k in keys}) > 1 or any(k[0] for k in keys)
    return " | ".join((f"noise {k[0]:g}, " if noise else "") + f"c={k[1]:g}, {int(k[2]) // 1000}k" for k in keys)


def pivot_text(s: pd.DataFrame, value) -> list[str]:
    keys = sorted({tuple(x) for x in s[CELL].itertuples(index=False)}, key=lambda k: (k[0], k[1], k[2]))
    head = "| model / group | " + _cell_head(keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for (m, g), grp in s.groupby(["model", "group"], sort=False):
        cells = []
        for k in keys:
            r = grp[(grp["spend_noise"] == k[0]) & (grp["confounding"] == k[1]) & (grp["customers"] == k[2])]
            cells.append(value(r.iloc[0]) if len(r) else "-")
        lines.append(f"| {m} / {g} | " + " | ".join(cells) + " |")
    return lines


def _cov_cell(r: pd.Series) -> str:
    if not r["worlds"]:
        return "no worlds"
    flag = "" if cov.within(r) else "**"
    excl = " !" if (r["cov_hi"] < cov.LEVEL or r["cov_lo"] > cov.LEVEL) else ""
    return f"{flag}{int(r['covered'])}/{int(r['worlds'])}{flag} [{r['cov_lo']:.2f}, {r['cov_hi']:.2f}]{excl}"


def _bias_cell(r: pd.Series) -> str:
    if not r["worlds"]:
        return "-"
    return f"{math.expm1(r['bias_log']):+.2%} ± {2 * r['bias_mc_se']:.2%} ({r['bias_over_se']:+.1f} SE)"


def summary_text(rec: pd.DataFrame, command: str, started: str, runtime: float | None, plan: dict) -> str:
    s = cell_summary(rec)
    done = rec.groupby(CELL)["world"].nunique()
    lines = [
        f"- Command: `{command}`",
        f"- Date: {started}",
        f"- Machine: {cov.machine()}",
    ]
    if runtime is not None:
        lines.append(f"- Runtime of this invocation: {runtime / 60:.1f} min (one worker under `nice -n 19` unless the "
                     "command says otherwise; worlds already in the records were not refitted)")
    per = rec.drop_duplicates(CELL + ["world"]).groupby("customers")["seconds"].median()
    lines.append("- Median seconds per world: " + ", ".join(f"{int(n):,} customers {t:.0f} s" for n, t in per.items()))
    resp = rec.drop_duplicates(CELL + ["world"]).groupby("customers")["respondents"].median()
    lines.append("- Median respondents per world: " + ", ".join(f"{int(n):,} customers {r:,.0f}" for n, r in resp.items()))
    lines.append("- Worlds per cell (planned -> done): " + "; ".join(
        f"spend noise {k[0]:g}, confounding {k[1]:g}, {int(k[2]):,} customers: {plan.get(k, '?')} -> {int(done.get(k, 0))}"
        for k in sorted(set(plan) | set(done.index))))
    missing = [k for k, v in plan.items() if done.get(k, 0) < v]
    if missing:
        lines.append(f"- **Incomplete cells: {len(missing)}** (rerun the same command: it resumes from the records)")
    n_err = int((rec["error"].fillna("") != "").sum())
    lines.append(f"- Failures: {n_err} model/group results from fits that raised an exception"
                 + ("" if not n_err else " (" + "; ".join(sorted(set(rec.loc[rec['error'].fillna('') != '', 'error'].str[:120])))[:600] + ")"))
    lines += ["", "### Coverage (covered / worlds, Wilson 95% interval)", "",
              "Bold: outside the target [0.90, 0.98]. `!`: the Wilson interval excludes 0.95 (a miss not explained "
              "by Monte Carlo error alone). c = confounding, k = thousand customers.", ""]
    lines += pivot_text(s, _cov_cell)
    lines += ["", "### Bias (exp(mean log bias) - 1, ± 2 Monte Carlo standard errors, and in units of the mean "
              "reported SE)", ""]
    lines += pivot_text(s, _bias_cell)
    lines += ["", "### Mean reported SE(log) (interval width / 3.92) and sd/SE", ""]
    lines += pivot_text(s, lambda r: f"{r['mean_se_log']:.4f} ({r['sd_over_se']:.2f})" if r["worlds"] else "-")

    # where coverage breaks down and why
    lines += ["", "### Cells outside the target, with the diagnosis of bench/coverage.py", ""]
    bad = s[~s.apply(cov.within, axis=1)]
    if bad.empty:
        lines.append("None.")
    for _, r in bad.iterrows():
        lines.append(f"- spend noise {r['spend_noise']:g}, confounding {r['confounding']:g}, "
                     f"{int(r['customers']):,} customers, {_label(r)}: {cov.diagnose(r)}")

    # a bias that does not shrink with n: where it would take coverage below 0.90
    d90 = _delta_for(0.90)
    lines += ["", "### Bias that does not shrink with the world size", "",
              "For each confounding level and model/group: the log bias pooled over all sizes (weighted by "
              "1 / Monte Carlo variance) with its t statistic, the bias at each size in SE units, and, where the "
              "pooled bias is significant (|t| >= 3), the number of customers at which a constant bias of that size "
              f"would be {d90:.2f} reported SE, the point where the coverage of a correct-width interval falls to 0.90 "
              "(SE taken to shrink as 1/sqrt(customers) from the largest size measured).", ""]
    lines.append("| spend noise | confounding | model / group | pooled log bias | t | bias / SE by size | "
                 "coverage 0.90 at about |")
    lines.append("|---|---|---|---|---|---|---|")
    for (sn, c, m, g), grp in s[s["worlds"] > 1].groupby(["spend_noise", "confounding", "model", "group"], sort=False):
        w = 1 / grp["bias_mc_se"] ** 2
        pooled = float((w * grp["bias_log"]).sum() / w.sum())
        se = float(1 / math.sqrt(w.sum()))
        t = pooled / se
        by = ", ".join(f"{int(n) // 1000}k {b:+.2f}" for n, b in zip(grp["customers"], grp["bias_over_se"]))
        big = grp.sort_values("customers").iloc[-1]
        if abs(t) >= 3:
            n_star = big["customers"] * (d90 * big["mean_se_log"] / abs(pooled)) ** 2
            where = f"{n_star:,.0f} customers"
        else:
            where = "(no significant bias)"
        lines.append(f"| {sn:g} | {c:g} | {m} / {g} | {pooled:+.4f} ± {2 * se:.4f} | {t:+.1f} | {by} | {where} |")

    lines += ["", "### All cells", "",
              "| spend noise | confounding | customers | model | group | truth | worlds | failures | coverage "
              "| Wilson 95% | mean log bias | MC se | mean SE(log) | bias / SE | sd(log est) | sd/SE | CI below / above truth |",
              "|" + "---|" * 17]
    for _, r in s.iterrows():
        lines.append(
            f"| {r['spend_noise']:g} | {r['confounding']:g} | {int(r['customers']):,} | {r['model']} | {r['group']} "
            f"| {r['truth']:.2f} | {int(r['worlds'])} | {int(r['failures'])} | {r['coverage']:.3f} "
            f"| [{r['cov_lo']:.3f}, {r['cov_hi']:.3f}] | {r['bias_log']:+.4f} | {r['bias_mc_se']:.4f} "
            f"| {r['mean_se_log']:.4f} | {r['bias_over_se']:+.2f} | {r['sd_log']:.4f} | {r['sd_over_se']:.2f} "
            f"| {int(r['miss_low'])} / {int(r['miss_high'])} |")
    return "\n".join(lines)


GRID_INTRO = """## Grid: confounding strength x world size

`bench/coverage_grid.py` repeats the study above over harder worlds: confounding 0 (none),
0.6 (moderate, the default world) and 1.2 (strong), each at 2,000, 20,000 and 200,000
customers, optionally with pre-survey spend measuring the confounder noisily
(`generate(spend_noise=...)`: one log-normal factor per customer on every invoice before the
survey date, none after it; default 0, the worlds as they are). The same world seeds are used
at every confounding level. Fewer worlds are drawn at the larger sizes, so the Monte Carlo
error differs by cell: read every coverage with its Wilson interval (with 30 worlds, 30/30
covered is consistent with a true coverage as low as 0.89 and 26/30 with one as high as 0.95;
with 10 worlds, 10/10 only says above 0.72: such cells show gross failures only). The bias is
better determined than the coverage: its Monte Carlo standard error is the spread of the
estimates over sqrt(worlds), and the spread shrinks with the world size, so 30 worlds of
200,000 customers measure the bias to about a fifth of one reported SE.

Run it with (resumable; one worker; add `--max-minutes M` to stop launching worlds after M minutes)

    nice -n 19 .venv/bin/python bench/coverage_grid.py [--confounding 0,0.6,1.2] \\
        [--customers 2000,20000,200000] [--worlds 100,50,30] [--spend-noise 0] [--workers 1]

"""


def write_md(text: str) -> None:
    old = MD.read_text() if MD.is_file() else ""
    block = f"{GRID_START}\n{text}\n{GRID_END}\n"
    if GRID_START in old and GRID_END in old:
        before, rest = old.split(GRID_START, 1)
        after = rest.split(GRID_END, 1)[1].lstrip("\n")
        new = before + block + ("\n" + after if after else "")
    else:
        new = old.rstrip("\n") + "\n\n" + GRID_INTRO + "### Results\n\n" + block
    MD.write_text(new)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--confounding", type=_floats, default=[0.0, 0.6, 1.2], help="comma list (default 0,0.6,1.2)")
    ap.add_argument("--customers", type=_ints, default=[2000, 20000, 200000], help="comma list (default 2000,20000,200000)")
    ap.add_argument("--worlds", type=_ints, default=[100, 50, 30], help="worlds per size, comma list (default 100,50,30)")
    ap.add_argument("--spend-noise", type=_floats, default=[0.0], help="comma list (default 0)")
    ap.add_argument("--seed", type=int, default=1, help="master seed (default 1; another seed needs its own --records file)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--records", type=Path, default=DEFAULT_RECORDS, help=f"per-world rows, appended (default {DEFAULT_RECORDS.relative_to(ROOT)})")
    ap.add_argument("--max-minutes", type=float, default=None, help="launch no new world after this many minutes")
    ap.add_argument("--summary-only", action="store_true", help="fit nothing; summarise the records")
    ap.add_argument("--no-md", action="store_true", help="do not rewrite the grid block of bench/COVERAGE.md")
    args = ap.parse_args(argv)
    if len(args.worlds) == 1:
        args.worlds = args.worlds * len(args.customers)
    if len(args.worlds) != len(args.customers):
        ap.error("--worlds needs one number, or one per --customers")

    command = " ".join([".venv/bin/python", "bench/coverage_grid.py"]
                       + [shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])])
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    plan = {(sn, c, n): w for n, w in zip(args.customers, args.worlds) for sn in args.spend_noise for c in args.confounding}
    rec = pd.read_csv(args.records, keep_default_na=True) if args.records.is_file() else pd.DataFrame()
    done = set() if rec.empty else set(rec[CELL + ["world"]].itertuples(index=False, name=None))
    tasks = []
    for n, w in zip(args.customers, args.worlds):
        seeds = cov.world_seeds(args.seed * 1_000_003 + n, w)  # per size; the same at every confounding level
        for i, s in enumerate(seeds):
            for sn in args.spend_noise:
                for c in args.confounding:
                    if (sn, c, n, i) not in done:
                        tasks.append((sn, c, n, i, s))
    if not args.summary_only:
        print(f"{len(tasks)} worlds to fit ({len(done)} already in {args.records}), {args.workers} worker(s)", flush=True)
        args.records.parent.mkdir(parents=True, exist_ok=True)
        header = not args.records.is_file()
        stop = False

        def keep(rows: list[dict], k: int) -> None:
            nonlocal header
            frame = pd.DataFrame(rows)
            if not header:
                frame = frame.reindex(columns=list(pd.read_csv(args.records, nrows=0).columns))
            frame.to_csv(args.records, mode="a", header=header, index=False)
            header = False
            el = time.perf_counter() - t0
            r0 = rows[0]
            errs = sorted({r["error"] for r in rows if r.get("error")})
            print(f"  {k}/{len(tasks)} noise {r0['spend_noise']:g} conf {r0['confounding']:g} n {r0['customers']} "
                  f"world {r0['world']}: {r0['seconds']:.0f} s, {el / 60:.1f} min elapsed"
                  + (f"  FAILED: {errs[0][:200]}" if errs else ""), flush=True)

        try:
            if args.workers == 1:
                for k, t in enumerate(tasks, 1):
                    if args.max_minutes is not None and time.perf_counter() - t0 > 60 * args.max_minutes:
                        print(f"--max-minutes {args.max_minutes} reached: {len(tasks) - k + 1} worlds not fitted", flush=True)
                        stop = True
                        break
                    keep(run_task(t), k)
            else:
                ctx = mp.get_context("spawn")
                with ctx.Pool(args.workers, maxtasksperchild=25) as pool:
                    for k, rows in enumerate(pool.imap(run_task, tasks, chunksize=1), 1):
                        keep(rows, k)
                        if args.max_minutes is not None and time.perf_counter() - t0 > 60 * args.max_minutes:
                            print(f"--max-minutes {args.max_minutes} reached", flush=True)
                            pool.terminate()
                            stop = True
                            break
        except KeyboardInterrupt:
            print("interrupted: summarising what is in the records", flush=True)
        del stop
        rec = pd.read_csv(args.records) if args.records.is_file() else pd.DataFrame()
    if rec.empty:
        print("no records")
        return 0
    rec["error"] = rec["error"].astype(object).fillna("").astype(str)
    # every cell in the records is summarised (also cells of an earlier invocation, e.g. --spend-noise 0.5);
    # records do not tell master seeds apart: give another --seed its own --records file
    text = summary_text(rec, command, f"{started:%Y-%m-%d %H:%M %Z}",
                        None if args.summary_only else time.perf_counter() - t0, plan)
    print()
    print(text)
    if not args.no_md:
        write_md(text)
        print(f"\nwrote {MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
