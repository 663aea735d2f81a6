"""Fit time of the linkage models on the history of the 1,000,000-customer bench world.

    .venv/bin/python bench/models.py [--world bench/out/world-1000000]

Run `python bench/run.py` first (it builds the world). Prints each model's fit time and its
estimates beside the synthetic world's truth.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cxvalue import data, history, linkage
from cxvalue.config import load_params
from cxvalue.synthetic import TRUE_EFFECTS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="bench/out/world-1000000")
    args = ap.parse_args()
    truth = json.loads((Path(args.world) / "truth.json").read_text())
    p = load_params({"as_of": truth["as_of"]})
    checked = data.check(args.world, p)
    h = history.history(checked, p)
    cov = list(checked.covariates)
    for model, column, effect in ((linkage.RevenueModel, "ratio", "revenue"),
                                  (linkage.CostToServeModel, "ratio", "contacts"),
                                  (linkage.ChurnModel, "hazard_ratio", "churn")):
        t0 = time.perf_counter()
        fitted = model("passive", cov).fit(h)
        seconds = time.perf_counter() - t0
        est = {g: round(float(fitted.summary.loc[g, column]), 3) for g in ("detractor", "promoter")}
        true = {g: TRUE_EFFECTS[effect][g] for g in est}
        print(f"{model.__name__}: {seconds:.1f} s on {len(h):,} customers; estimate {est}, truth {true}")


if __name__ == "__main__":
    main()
