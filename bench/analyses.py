"""Time and memory of the report's analyses at scale, with estimates beside the world's truth.

    .venv/bin/python bench/analyses.py                      # the 1,000,000-customer bench world
    .venv/bin/python bench/analyses.py --customers 200000   # a smaller world (built if missing)

The world is the one ``bench/run.py`` uses (``bench/out/world-<n>/``, seed 42, Parquet; built
with run.py's own worker, in a subprocess, when missing or made by another version of
``cxvalue/synthetic.py``). One process then runs the chain of notebook 05 (and the business
case of notebook 03) step by step, as the report calls it:

    analysis = pipeline.analyse(folder, params)          # check -> history -> linkage -> case
    linkage.ReferralModel(...).fit(h); value.effect_draws(...) x 4;
    business_case.npv_distribution(...); business_case.sensitivity(...); business_case.evaluate(...)
    scorecard.Scorecard(params).fit(checked, margin_per_year, base)
    drivers.KeyDrivers.from_params(params).fit(checked)
    drivers.JourneysVsTouchpoints(seed, min_cell_size).fit(checked, h)
    loop.complaint_history -> loop.ClosingTheLoop.fit; loop.next_responses -> loop.Transitions.fit;
    loop.response_base -> loop.WhoAnswered.fit; loop.referred_customers

For each step: wall time, CPU time (user + system, all threads), RSS when it starts and the
peak RSS while it runs (the kernel's high-water mark ``VmHWM``, reset before the step by
writing 5 to ``/proc/self/clear_refs``; where that is not allowed, the highest RSS seen by
a thread sampling ``/proc/self/statm`` every 10 ms), the rows it works on, and for the
estimators the synthetic world knows the truth of, the estimate beside it.

Output: the table on stdout, ``bench/out/analyses-<n>.{md,json}``, and for the
1,000,000 world (or with ``--readme``) the "Analyses at scale" results block of
``bench/README.md``. See bench/README.md for the figures and the notes on hot spots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import run as bench_run  # noqa: E402  (bench/run.py: world folder, machine and code info)

RESULTS_START = "<!-- analyses:start (written by bench/analyses.py; do not edit by hand) -->"
RESULTS_END = "<!-- analyses:end -->"
SAMPLE_S = 0.01


# --------------------------------------------------------------------------- measuring


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _hwm() -> int | None:
    """The kernel's peak RSS of this process (VmHWM), bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    """Collect garbage (statsmodels results hold reference cycles) and hand freed heap back to
    the OS (glibc ``malloc_trim``), so that "RSS before" is what is still in use."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class _Sampler(threading.Thread):
    """Highest RSS seen every ``SAMPLE_S`` seconds (the fallback when VmHWM cannot be reset)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _current_rss()
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.peak = max(self.peak, _current_rss())

    def stop(self) -> int:
        self._stop.set()
        self.join()
        return max(self.peak, _current_rss())


STEPS: list[dict] = []


def measure(name: str, fn, rows=None, truth=None):
    """Run ``fn()``; record wall/CPU time, RSS before and peak RSS during, rows, estimate vs truth.

    ``rows(result) -> str`` says what the step worked on; ``truth(result) -> str`` gives the
    estimate beside the truth (or the headline figure where the world has no truth).
    """
    _trim()
    load = os.getloadavg()[0]
    rss0 = _current_rss()
    exact = _reset_hwm()
    sampler = None if exact else _Sampler()
    if sampler:
        sampler.start()
    print(f"{name} ... (load average {load:.2f})", flush=True)
    t0, c0 = time.perf_counter(), _cpu_s()
    out = fn()
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    peak = (_hwm() or 0) if exact else sampler.stop()
    step = {"step": name, "wall_s": wall, "cpu_s": cpu, "rss_before_bytes": rss0, "peak_rss_bytes": max(peak, rss0),
            "peak_method": "VmHWM" if exact else "sampled", "load_before": load,
            "rows": rows(out) if rows else "", "vs_truth": truth(out) if truth else ""}
    STEPS.append(step)
    print(f"  {wall:.2f} s wall, {cpu:.2f} s CPU, RSS {rss0 / 1e9:.2f} -> peak {step['peak_rss_bytes'] / 1e9:.2f} GB"
          + (f"; {step['rows']}" if step["rows"] else "") + (f"; {step['vs_truth']}" if step["vs_truth"] else ""),
          flush=True)
    return out


# --------------------------------------------------------------------------- the world


def ensure_world(n: int, seed: int) -> Path:
    world = bench_run.world_dir(n, seed, "parquet")
    if bench_run._world_ready(world, n, seed, "parquet") and (world / "bench-world.json").is_file():
        print(f"world: reusing {world.relative_to(ROOT)}", flush=True)
        return world
    print(f"world: generating {n:,} customers (seed {seed}) into {world.relative_to(ROOT)} ...", flush=True)
    (bench_run.OUT / "logs").mkdir(parents=True, exist_ok=True)
    log = bench_run.OUT / "logs" / f"generate-{n}.log"
    code, ru = bench_run._run_child(["--worker", "generate", "--customers", str(n), "--seed", str(seed),
                                     "--format", "parquet", "--world", str(world)], log)
    if code:
        print(bench_run._tail(log), file=sys.stderr)
        raise SystemExit("world generation failed")
    print(f"world: generated in {ru['process_wall_s']:.0f} s, peak RSS {ru['process_peak_rss_bytes'] / 1e9:.1f} GB",
          flush=True)
    return world


# --------------------------------------------------------------------------- the steps


def _fmt(d: dict, nd: int = 3) -> str:
    return ", ".join(f"{k} {v:.{nd}f}" for k, v in d.items())


def run_steps(world: Path, draws: int) -> dict:
    import numpy as np

    from cxvalue import business_case, config, drivers, linkage, loop, pipeline, scorecard, value
    from cxvalue.config import load_params

    truth = json.loads((world / "truth.json").read_text())
    p0 = load_params(overrides={"as_of": truth["as_of"], "scenario.draws": draws})

    a = measure("pipeline.analyse (check, history, linkage, business case)", lambda: pipeline.analyse(str(world), p0),
                rows=lambda a: f"{len(a.history):,} customers in the history",
                truth=lambda a: "NPV p10/p50/p90 " + "/".join(f"{a.case.uncertainty[k] / 1e6:.1f}M"
                                                              for k in ("npv_p10", "npv_p50", "npv_p90")))
    p, h, checked = a.params, a.history, a.checked
    cov, size = list(checked.covariates), p["min_group_size"]
    groups = list(config.bands_for(p))
    n_h = f"{len(h):,} customers"

    # ---- business case pieces
    ref_truth = {"detractor": 0.3, "promoter": 4.0}  # referral pick weights of cxvalue/synthetic.py
    measure(
        "linkage.ReferralModel.fit", lambda: linkage.ReferralModel(a.reference, cov, size).fit(h),
        rows=lambda m: n_h,
        truth=lambda m: "ratio " + ", ".join(
            f"{g} {m.summary.loc[g, 'ratio']:.2f} [{m.summary.loc[g, 'ratio_lo']:.2f}, {m.summary.loc[g, 'ratio_hi']:.2f}]"
            f" ({t:.1f})" for g, t in ref_truth.items()))
    seed = int(p["seed"])
    effect = measure(f"value.effect_draws x 4 ({draws:,} draws each)", lambda: (
        value.effect_draws(a.revenue, draws, seed), value.effect_draws(a.cost_to_serve, draws, seed + 1),
        value.effect_draws(a.churn, draws, seed + 2),
        value.effect_draws(a.referrals, draws, seed + 3) if a.referrals is not None else None),
        rows=lambda e: f"{draws:,} draws")
    i = a.case.inputs
    points = (a.revenue.summary["ratio"], a.cost_to_serve.summary["ratio"], i["groups"]["hazard_ratio"],
              a.referrals.summary["ratio"] if a.referrals is not None else None)
    relative = [business_case.relative_draws(e, pt) if e is not None else None for e, pt in zip(effect, points)]
    npv = measure(f"business_case.npv_distribution ({draws:,} draws)", lambda: business_case.npv_distribution(
        i["movers"], relative[0], relative[1], relative[2], i["mover_moves"], i["ramp"],
        i["gross_margin"], i["discount_rate"], i["horizon_years"], i["one_off_cost"], i["yearly_cost"],
        i["lag_years"], relative[3], i["referral_value"]),
        rows=lambda d: f"{len(d):,} draws",
        truth=lambda d: "same draws as evaluate: " + ("yes" if np.allclose(d, a.case.npv_draws) else "NO"))
    sc = p["scenario"]
    measure("business_case.sensitivity (tornado)", lambda: business_case.sensitivity(
        a.revenue, a.cost_to_serve, a.churn, a.curves, a.base,
        {**p, "scenario": {**sc, "target_score": None}}, a.referrals, history=h),
        rows=lambda s: f"{len(s)} assumptions x 2")
    case = measure(f"business_case.evaluate ({draws:,} draws)", lambda: business_case.evaluate(
        a.revenue, a.cost_to_serve, a.churn, a.curves, a.base, p, a.referrals, history=h),
        rows=lambda c: f"{len(c.npv_draws):,} draws",
        truth=lambda c: f"NPV {c.npv / 1e6:.2f}M, P(NPV > 0) {c.uncertainty['p_npv_positive']:.3f}")
    value_per_year = business_case.group_value_per_year(case)
    customers = float(a.base.sum())

    # ---- scorecard
    card = measure("scorecard.Scorecard.fit", lambda: scorecard.Scorecard(p).fit(
        checked, case.clv["margin_per_year"], a.base),
        rows=lambda s: f"{s.kpis_.get('retention_12m', {}).get('n', 0):,} customers active a year before as_of",
        truth=lambda s: "retention_12m " + f"{s.kpis_['retention_12m']['actual']:.3f}, NPS {s.kpis_['nps']['actual']:.1f}"
        if "nps" in s.kpis_ else "")

    # ---- drivers
    imp_truth = {f"attr_{k}": v for k, v in truth.get("driver_importance", {}).items()}
    kd = measure("drivers.KeyDrivers.fit (200 bootstrap resamples)",
                 lambda: drivers.KeyDrivers.from_params(p).fit(checked),
                 rows=lambda k: f"{k.n_responses_:,} relationship responses",
                 truth=lambda k: "importance " + ", ".join(
                     f"{d[5:]} {k.summary_.loc[d, 'importance']:.3f} [{k.summary_.loc[d, 'importance_lo']:.3f}, "
                     f"{k.summary_.loc[d, 'importance_hi']:.3f}] ({imp_truth.get(d, float('nan')):.3f})"
                     for d in k.summary_.index))
    jv_truth = truth.get("journeys_vs_touchpoints", {})
    jv = measure("drivers.JourneysVsTouchpoints.fit (5 folds, 1,000 resamples)",
                 lambda: drivers.JourneysVsTouchpoints(seed=p["seed"], min_cell_size=p["min_cell_size"]).fit(checked, h),
                 rows=lambda j: f"{j.n_customers_:,} customers with both ratings",
                 truth=lambda j: "; ".join(
                     f"{o}: {r['winner']} ({r['difference']:+.3f} [{r['difference_lo']:+.3f}, {r['difference_hi']:+.3f}])"
                     for o, r in j.summary_.iterrows())
                 + f" (truth: {'journeys' if jv_truth.get('journeys_win') else 'touchpoints'} for "
                 f"{', '.join(jv_truth.get('drives', []))}, neither for revenue)")

    # ---- loop
    res_truth = truth.get("resolution", {})
    complaints = measure("loop.complaint_history", lambda: loop.complaint_history(checked, p, h),
                         rows=lambda c: f"{len(c):,} complainers",
                         truth=lambda c: f"resolved share {c['resolved'].mean():.3f} "
                         f"(generator {res_truth.get('resolved_share', float('nan')):.2f}, before censoring at as_of)")
    measure("loop.ClosingTheLoop.fit", lambda: loop.ClosingTheLoop(
        cov, gross_margin=p["gross_margin"], horizon_years=p["horizon_years"], discount_rate=p["discount_rate"],
        min_group_size=p["min_group_size"], seed=p["seed"],
        cost_to_serve_per_customer_year=a.cost_to_serve_per_customer_year()).fit(complaints),
        rows=lambda m: f"{m.n_complainers_:,} complainers",
        truth=lambda m: f"HR open/resolved {m.hazard_ratio_['estimate']:.3f} [{m.hazard_ratio_['lo']:.3f}, "
        f"{m.hazard_ratio_['hi']:.3f}] (truth {res_truth.get('hazard_ratio_open_vs_resolved', float('nan')):.2f}); "
        f"revenue ratio {m.summary_.loc['open', 'revenue_ratio']:.3f} "
        f"(truth {res_truth.get('revenue_ratio_open_vs_resolved', float('nan')):.2f})")
    pairs = measure("loop.next_responses", lambda: loop.next_responses(checked, h, p),
                    rows=lambda x: f"{len(x):,} customers answered twice")
    measure("loop.Transitions.fit", lambda: loop.Transitions(groups, p["min_cell_size"]).fit(pairs, value_per_year),
            rows=lambda t: f"{t.n_customers_:,} pairs",
            truth=lambda t: f"net up per customer-year {t.movement_['net_up_per_customer_year']:+.3f}")
    base = measure("loop.response_base", lambda: loop.response_base(checked, h, p),
                   rows=lambda b: f"{len(b):,} customers ({int(b['responded'].sum()):,} respondents)")
    measure("loop.WhoAnswered.fit", lambda: loop.WhoAnswered(cov, groups=groups).fit(base),
            rows=lambda w: f"{len(w.propensity_):,} customers",
            truth=lambda w: f"AUC {w.auc_:.3f}, effective sample {w.effective_sample_size_:,.0f}; premium share "
            f"resp/non/all/weighted " + "/".join(f"{w.summary_.loc['plan=premium', c]:.3f}" for c in
                                                 ("respondents", "non_respondents", "all_customers",
                                                  "respondents_weighted"))
            if "plan=premium" in w.summary_.index else "")
    measure("loop.referred_customers", lambda: loop.referred_customers(checked, h, p["min_cell_size"]),
            rows=lambda r: f"{int(r['referred'].sum()):,} referred customers",
            truth=lambda r: "revenue per customer-year " + _fmt(r["revenue_per_customer_year"].dropna().to_dict(), 0)
            + " (truth: alike)")
    del card, kd, jv, npv, customers
    return {"truth": truth, "history_customers": len(h)}


# --------------------------------------------------------------------------- report


def table(steps: list[dict]) -> str:
    rows = ["| step | wall (s) | CPU (s) | RSS before (GB) | peak RSS (GB) | step's own (GB) | load | rows | "
            "estimate (truth) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for s in steps:
        own = (s["peak_rss_bytes"] - s["rss_before_bytes"]) / 1e9
        rows.append(f"| `{s['step']}` | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {s['rss_before_bytes'] / 1e9:.2f} | "
                    f"{s['peak_rss_bytes'] / 1e9:.2f} | +{own:.2f} | {s['load_before']:.1f} | {s['rows']} | "
                    f"{s['vs_truth']} |")
    return "\n".join(rows)


def markdown(res: dict) -> str:
    m, v, w = res["machine"], res["versions"], res["world"]
    rows = w["rows"]
    return f"""Run of {res['date']} (`{res['command']}`).

- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GiB RAM; {m['os']}; Python {m['python']}
- Code: cxvalue at {res['code']}
- Packages: pandas {v['pandas']}, duckdb {v['duckdb']}, numpy {v['numpy']}, statsmodels {v.get('statsmodels', '-')}
- World: {w['customers']:,} customers (seed {w['seed']}, parquet): {rows['transactions']:,} transactions, {rows['contacts']:,} contacts, {rows['responses']:,} responses; history: {res['history_customers']:,} customers
- Peak RSS: {res['peak_method']}; one process, steps in the order shown; RSS before = what earlier steps left in use (after `gc.collect()` and `malloc_trim`); step's own = peak - before; load = 1-minute load average before the step (2 cores). Whole process: {res['process_wall_s']:.0f} s, peak RSS {res['process_peak_rss_bytes'] / 1e9:.2f} GB

{table(res['steps'])}
"""


def update_readme(section: str) -> None:
    readme = bench_run.README
    text = readme.read_text()
    block = f"{RESULTS_START}\n{section.rstrip()}\n{RESULTS_END}"
    if RESULTS_START in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_START, 1)
        text = head + block + rest.split(RESULTS_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Analyses at scale\n\n" + block + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=bench_run.DEFAULT_CUSTOMERS)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--draws", type=int, default=10_000, help="NPV simulation draws (scenario.draws)")
    ap.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                    help="rewrite the analyses block of bench/README.md (default: only for the 1,000,000 world)")
    a = ap.parse_args(argv)
    command = "python bench/analyses.py" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")
    world = ensure_world(a.customers, a.seed)
    bench_run._warm_cache(world)
    t0 = time.perf_counter()
    out = run_steps(world, a.draws)
    from importlib.metadata import PackageNotFoundError, version

    vers = bench_run.versions()
    try:
        vers["statsmodels"] = version("statsmodels")
    except PackageNotFoundError:
        pass
    res = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command,
        "machine": bench_run.machine_info(), "versions": vers, "code": bench_run.code_version(),
        "world": {"customers": a.customers, "seed": a.seed, "rows": bench_run._row_counts(world, "parquet"),
                  "dir": str(world.relative_to(ROOT))},
        "history_customers": out["history_customers"], "steps": STEPS,
        "peak_method": ("kernel high-water mark (VmHWM) reset before each step"
                        if all(s["peak_method"] == "VmHWM" for s in STEPS) else
                        f"highest RSS sampled every {SAMPLE_S * 1000:.0f} ms"),
        "process_wall_s": time.perf_counter() - t0,
        # ru_maxrss follows the VmHWM resets, so the process peak is the highest step peak
        "process_peak_rss_bytes": max(s["peak_rss_bytes"] for s in STEPS),
    }
    md = markdown(res)
    tag = str(a.customers) + ("" if a.seed == 42 else f"-seed{a.seed}")
    (bench_run.OUT / f"analyses-{tag}.md").write_text(md)
    (bench_run.OUT / f"analyses-{tag}.json").write_text(json.dumps(res, indent=2, default=str))
    print()
    print(md)
    if a.readme if a.readme is not None else (a.customers == bench_run.DEFAULT_CUSTOMERS and a.seed == 42):
        update_readme(md)
        print(f"results written to bench/README.md and bench/out/analyses-{tag}.md")
    else:
        print(f"results written to bench/out/analyses-{tag}.md (README unchanged; --readme to update it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
