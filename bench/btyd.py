"""Fit time and peak memory of the BG/NBD (group + one control) and Gamma-Gamma at 1M customers.

    PYTHONPATH=. .venv/bin/python bench/btyd.py [--customers 1000000] [--seed 1] [--trace]

Draws the seeded non-contractual world (cxvalue.synthetic_noncontractual), then times each fit
on its own: wall-clock seconds (time.perf_counter), peak traced Python memory during the fit
(tracemalloc, numpy arrays included) and the process's peak resident memory
(resource.getrusage). Prints the estimates beside the world's truth. Target: the BG/NBD fit
within 20 s.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from cxvalue.btyd import BGNBD, GammaGamma
from cxvalue.synthetic_noncontractual import TRUE_EFFECTS, generate


def _timed(label, fn, trace: bool):
    """Time ``fn`` untraced (tracemalloc slows numpy-heavy code), then, with ``trace``, run it
    again under tracemalloc for its peak memory."""
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    traced = ""
    if trace:
        tracemalloc.start()
        fn()
        traced = f", peak traced {tracemalloc.get_traced_memory()[1] / 1024 ** 3:.2f} GB"
        tracemalloc.stop()
    print(f"{label}: {seconds:.1f} s{traced}, process peak RSS so far {rss:.2f} GB")
    return out, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace", action="store_true", help="also measure peak memory with tracemalloc (runs each fit twice)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    world = generate(args.customers, seed=args.seed)
    c = world.customers
    print(f"world: {len(c):,} customers, {int(c['x'].sum()):,} repeat purchases, "
          f"{time.perf_counter() - t0:.1f} s to draw")
    fit, _ = _timed("BGNBD fit (group + log pre-window purchases)",
                    lambda: BGNBD("group", "passive").fit(c, covariates=["log_pre_purchases"]), args.trace)
    print(f"  {fit.patterns_:,} distinct (x, t_x, T, covariates) patterns; log-likelihood {fit.log_likelihood_:,.1f}")
    eff = fit.group_effects_
    for g in ("detractor", "promoter"):
        print(f"  {g}: purchase-rate ratio {eff.loc[g, 'purchase_rate_ratio']:.3f} "
              f"[{eff.loc[g, 'purchase_rate_ratio_lower']:.3f}, {eff.loc[g, 'purchase_rate_ratio_upper']:.3f}] "
              f"(truth {TRUE_EFFECTS['purchase_rate'][g]}), dropout ratio {eff.loc[g, 'dropout_ratio']:.3f} "
              f"[{eff.loc[g, 'dropout_ratio_lower']:.3f}, {eff.loc[g, 'dropout_ratio_upper']:.3f}] "
              f"(truth {TRUE_EFFECTS['dropout'][g]})")
    gg, _ = _timed("GammaGamma fit", lambda: GammaGamma().fit(c), args.trace)
    print(f"  {gg.buyers_:,.0f} repeat buyers; p, q, gamma = {gg.params_.round(3).to_dict()} "
          f"(truth {world.truth['spend']})")
    _timed("predictions (E[X(52)], P(alive)) for every customer",
           lambda: (fit.expected_purchases(52, c), fit.probability_alive(c)), False)


if __name__ == "__main__":
    main()
