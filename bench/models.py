"""Fit time and memory of the linkage models on the history of the 1,000,000-customer bench world.

    .venv/bin/python bench/models.py [--world bench/out/world-1000000] [--model ChurnModel ...]

Run `python bench/run.py` (or `cxvalue synth --customers 1000000 --out bench/out/world-1000000`)
first: it builds the world. Prints each model's fit time, the rise of the process's peak resident
memory during the fit (``ru_maxrss`` after minus before: the fit's own working memory, at most),
and its estimates beside the synthetic world's truth. Closing the loop is fitted on the complaint
history as the pipeline builds it, with the pipeline's settings. Run another checkout's code with
``PYTHONPATH=<checkout> .venv/bin/python bench/models.py`` (the path comes before the editable install).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import cxvalue
from cxvalue import data, history, linkage
from cxvalue.config import load_params
from cxvalue.synthetic import TRUE_EFFECTS

MODELS = ("RevenueModel", "CostToServeModel", "ChurnModel", "ClosingTheLoop")


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kilobytes on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="bench/out/world-1000000")
    ap.add_argument("--model", action="append", choices=MODELS, help="fit only these (repeatable; default all)")
    args = ap.parse_args()
    truth = json.loads((Path(args.world) / "truth.json").read_text())
    p = load_params({"as_of": truth["as_of"]})
    checked = data.check(args.world, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    print(f"cxvalue from {Path(cxvalue.__file__).parent}; {len(h):,} customers in the history; "
          f"peak memory so far {_peak_gb():.2f} GB")
    fits = {"RevenueModel": ("ratio", "revenue"), "CostToServeModel": ("ratio", "contacts"),
            "ChurnModel": ("hazard_ratio", "churn")}
    for name in args.model or MODELS:
        before = _peak_gb()
        if name == "ClosingTheLoop":
            from cxvalue import closing_the_loop as ctl

            complaints = ctl.complaint_history(checked, p, h)
            before = _peak_gb()
            t0 = time.perf_counter()
            fitted = ctl.ClosingTheLoop(covariates=cov, seed=p["seed"]).fit(complaints)
            seconds = time.perf_counter() - t0
            hr = fitted.hazard_ratio_
            print(f"ClosingTheLoop: {seconds:.1f} s on {len(complaints):,} complainers, peak memory +"
                  f"{_peak_gb() - before:.2f} GB (process {_peak_gb():.2f} GB); hazard ratio open / resolved "
                  f"{hr['estimate']:.3f} [{hr['lo']:.3f}, {hr['hi']:.3f}], truth {truth['resolution']['hazard_ratio_open_vs_resolved']}")
            continue
        column, effect = fits[name]
        t0 = time.perf_counter()
        fitted = getattr(linkage, name)("passive", cov).fit(h)
        seconds = time.perf_counter() - t0
        est = {g: round(float(fitted.summary.loc[g, column]), 3) for g in ("detractor", "promoter")}
        true = {g: TRUE_EFFECTS[effect][g] for g in est}
        print(f"{name}: {seconds:.1f} s, peak memory +{_peak_gb() - before:.2f} GB (process {_peak_gb():.2f} GB); "
              f"estimate {est}, truth {true}")


if __name__ == "__main__":
    main()
