"""Bias and 95% coverage of the revenue and cost-to-serve ratios, main and within-customer check, on
strongly confounded worlds (bench/COVERAGE.md, "The within-customer check"). One CSV line per world,
model and group on stdout:

    n, confounding, spend_noise, seed, model, group, main relative bias, main covered (0/1),
    within relative bias, within covered, within SE(log), main SE(log)

"main" is the covariate-adjusted comparison (summary columns ``covariates_*``), whichever is the
model's headline (revenue's is the within-customer one since 2026-12-03).

    .venv/bin/python bench/within_check.py 20000 1.2 0.5 0 20 > within-noisy.csv
    .venv/bin/python bench/within_check.py 20000 1.2 0 0 20 > within.csv
"""
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from cxvalue import data, history, linkage
from cxvalue.config import load_params
from cxvalue.synthetic import TRUE_EFFECTS, generate
n, c, noise = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
seeds = range(int(sys.argv[4]), int(sys.argv[5]))
for seed in seeds:
    w = generate(n_customers=n, seed=1000 + seed, confounding=c, spend_noise=noise)
    p = load_params(overrides={"as_of": w.truth["as_of"]})
    ch = data.check(w.tables, p); h = history.history(ch, p); cov = list(ch.covariates)
    for M, tr in ((linkage.RevenueModel, "revenue"), (linkage.CostToServeModel, "contacts")):
        s = M("passive", cov).fit(h).summary
        for g in ("detractor", "promoter"):
            t = TRUE_EFFECTS[tr][g]; r = s.loc[g]
            print(f"{n},{c},{noise},{seed},{tr},{g},{r.covariates_ratio/t-1:.5f},{int(r.covariates_lo<=t<=r.covariates_hi)},{r.within_ratio/t-1:.5f},{int(r.within_lo<=t<=r.within_hi)},{np.log(r.within_hi/r.within_lo)/3.92:.5f},{np.log(r.covariates_hi/r.covariates_lo)/3.92:.5f}", flush=True)
