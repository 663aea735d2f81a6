"""BG/NBD: pymc-marketing's MAP fit against cxvalue's scipy maximum-likelihood fit (issue 13).

Runs in its own venv, never in the project's .venv (pymc-marketing is not a cxvalue dependency):

    python3 -m venv /tmp/pymc-venv
    /tmp/pymc-venv/bin/pip install pymc-marketing pandas scipy statsmodels 'ibis-framework[duckdb]'
    /tmp/pymc-venv/bin/pip download -d /tmp/pymc-wheels pymc-marketing   # optional: wheel sizes
    nice -n 19 /tmp/pymc-venv/bin/python bench/pymc_marketing.py \\
        [--customers 100000 1000000] [--seed 1] [--wheels /tmp/pymc-wheels] [--project-venv .venv] \\
        [--skip-install] [--skip-cdnow] [--skip-plain] [--tight]

Prints, in order:

1. install size: the distributions pymc-marketing pulls in (its requirement closure in this
   venv), their size on disk (RECORD files) and, with ``--wheels``, the size of their wheels;
   and which of them the project's venv (``--project-venv``, only read) does not have yet;
2. CDNOW (tests/data/cdnow): the pymc-marketing MAP fit with flat priors (HalfFlat on r, alpha,
   a, b: the MAP is then the maximum-likelihood estimate), with the library's default priors,
   and cxvalue's fit, beside the published r=0.243, alpha=4.414, a=0.793, b=2.426;
3. for each size in ``--customers``, the seeded world (cxvalue.synthetic_noncontractual,
   ``generate(n, seed)``): wall time of cxvalue's BGNBD fit (group + log pre-window purchases in
   both processes, with standard errors), of pymc-marketing's MAP fit without covariates, and of
   its MAP fit with the same covariates (group dummies against "passive" + the control, in both
   the purchase and the dropout process; flat priors). Group effects are printed beside the
   world's truth; pymc-marketing's dropout link scales a and b with separate coefficients, so
   its dropout ratio is computed as the ratio of mean dropout odds per purchase a_i / (b_i - 1),
   cxvalue's definition (cxvalue scales a alone).

Each fit is timed with time.perf_counter around the whole call (for pymc-marketing that includes
building the model graph and PyTensor's compilation; the compiled C modules are cached in
~/.pytensor, so the first run on a machine is slower still). One process, one fit at a time.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
import time
import warnings
from pathlib import Path

# bench/ holds a coverage.py that would shadow the coverage package numba imports: drop the
# script's folder from the path and put the project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cxvalue.btyd import BGNBD  # noqa: E402
from cxvalue.synthetic_noncontractual import TRUE_EFFECTS, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT / "tests" / "data" / "cdnow" / "cdnow_customers_summary_with_transactions.csv"
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- install size

def _closure(root: str) -> list[md.Distribution]:
    """The installed distributions ``root`` requires, transitively (no extras)."""
    from packaging.requirements import Requirement

    seen: dict[str, md.Distribution] = {}
    todo = [root]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[name] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _disk_bytes(dist: md.Distribution) -> int:
    total = 0
    for f in dist.files or []:
        p = Path(dist.locate_file(f))
        if p.is_file():
            total += p.stat().st_size
    return total


def _project_has(venv: Path) -> set[str]:
    site = next(venv.glob("lib/python*/site-packages"), None)
    if site is None:
        return set()
    return {_norm(p.name.split("-")[0]) for p in site.glob("*.dist-info")}


def install_size(wheels: Path | None, project_venv: Path) -> None:
    dists = _closure("pymc-marketing")
    have = _project_has(project_venv)
    wheel_size: dict[str, int] = {}
    if wheels is not None and wheels.is_dir():
        for w in wheels.iterdir():
            wheel_size[_norm(w.name.split("-")[0])] = w.stat().st_size
    rows = []
    for d in dists:
        n = _norm(d.metadata["Name"])
        rows.append((n, d.version, _disk_bytes(d) / 1e6, wheel_size.get(n, float("nan")) / 1e6
                     if wheel_size else float("nan"), n in have))
    t = pd.DataFrame(rows, columns=["package", "version", "disk_MB", "wheel_MB", "in_project_venv"])
    t = t.sort_values("disk_MB", ascending=False)
    new = t[~t["in_project_venv"]]
    print("== install size: pymc-marketing and its requirement closure")
    with pd.option_context("display.max_rows", 200, "display.width", 140):
        print(t.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"all: {len(t)} distributions, {t['disk_MB'].sum():.0f} MB on disk, "
          f"{t['wheel_MB'].sum():.0f} MB of wheels")
    print(f"not yet in {project_venv}: {len(new)} distributions, {new['disk_MB'].sum():.0f} MB on disk, "
          f"{new['wheel_MB'].sum():.0f} MB of wheels: {', '.join(new['package'])}")
    print()


# --------------------------------------------------------------------------- fits

def _flat() -> dict:
    from pymc_extras.prior import Prior

    cfg = {k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")}
    cfg["purchase_coefficient"] = Prior("Flat")
    cfg["dropout_coefficient"] = Prior("Flat")
    return cfg


def _pymc_frame(c: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    d = pd.DataFrame({"customer_id": np.arange(len(c)), "frequency": c["x"].to_numpy(float),
                      "recency": c["t_x"].to_numpy(float), "T": c["T"].to_numpy(float)})
    for col in covariates:
        d[col] = c[col].to_numpy(float)
    return d


#: scipy L-BFGS-B options for --tight (the defaults stop early on the covariate model at 1M)
TIGHT = {"options": {"ftol": 1e-13, "gtol": 1e-8, "maxiter": 5000}}


def pymc_map(c: pd.DataFrame, covariates: list[str] | None = None, flat: bool = True, **find_map):
    from pymc_marketing.clv import BetaGeoModel

    covariates = list(covariates or [])
    cfg = _flat() if flat else {}
    if covariates:
        cfg["purchase_covariate_cols"] = covariates
        cfg["dropout_covariate_cols"] = covariates
    t0 = time.perf_counter()
    model = BetaGeoModel(model_config=cfg or None)
    model.fit(_pymc_frame(c, covariates), method="map", progressbar=False, **find_map)
    seconds = time.perf_counter() - t0
    return model, seconds


def loglik(r, alpha, a, b, x, t_x, T) -> float:
    """BG/NBD log-likelihood summed over customers (Fader, Hardie & Lee 2005a, eq. 6, in log-sum-exp
    form), with per-customer alpha, a, b allowed: the same number for both libraries' estimates."""
    from scipy import special

    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    base = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
            + special.betaln(a, b + x) - special.betaln(a, b))
    first = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                          - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(base + np.logaddexp(first, second)))


def pymc_loglik(model, c: pd.DataFrame) -> float:
    p = pymc_params(model)
    return loglik(p["r"], p["alpha"], p["a"], p["b"], c["x"], c["t_x"], c["T"])


def _first(post, name):
    return np.asarray(post[name].values).reshape(-1, *post[name].shape[2:])[0]


def pymc_params(model) -> dict:
    post = model.idata.posterior
    out = {}
    for k in ("r", "alpha", "a", "b", "alpha_scale", "a_scale", "b_scale",
              "purchase_coefficient_alpha", "dropout_coefficient_a", "dropout_coefficient_b"):
        if k in post:
            v = _first(post, k)
            out[k] = v if v.ndim else float(v)
    return out


def cdnow() -> None:
    df = pd.read_csv(CDNOW)
    c = df[["x", "t_x", "T"]]
    print("== CDNOW (2,357 customers), published r=0.243 alpha=4.414 a=0.793 b=2.426")
    t0 = time.perf_counter()
    fit = BGNBD().fit(c)
    s = time.perf_counter() - t0
    print(f"cxvalue BGNBD (scipy ML):        {s:6.2f} s  " +
          " ".join(f"{k}={fit.params_[k]:.3f}" for k in PUBLISHED) + f"  loglik {fit.log_likelihood_:.1f}")
    for label, flat in (("pymc-marketing MAP, flat priors", True), ("pymc-marketing MAP, default priors", False)):
        for attempt in ("first", "again"):
            model, s = pymc_map(c, flat=flat)
            p = pymc_params(model)
            print(f"{label} ({attempt}): {s:6.2f} s  " + " ".join(f"{k}={p[k]:.3f}" for k in PUBLISHED)
                  + f"  loglik {pymc_loglik(model, c):.1f}")
    print()


def _cx_ratios(fit: BGNBD) -> dict:
    eff = fit.group_effects_
    return {g: (eff.loc[g, "purchase_rate_ratio"], eff.loc[g, "dropout_ratio"]) for g in ("detractor", "promoter")}


def _pymc_ratios(p: dict, covariates: list[str]) -> dict:
    """Purchase-rate ratio exp(g_alpha) and the ratio of mean dropout odds a_i/(b_i - 1) for a
    one-hot group column, other covariates at zero (the ratio does not depend on them for the
    purchase process; for dropout it does slightly when b's coefficient is non-zero: evaluated
    with the other covariates at zero)."""
    a0, b0 = p["a_scale"], p["b_scale"]
    out = {}
    for g in ("detractor", "promoter"):
        j = covariates.index(g)
        pr = float(np.exp(p["purchase_coefficient_alpha"][j]))
        a1 = a0 * np.exp(p["dropout_coefficient_a"][j])
        b1 = b0 * np.exp(p["dropout_coefficient_b"][j])
        out[g] = (pr, float((a1 / (b1 - 1)) / (a0 / (b0 - 1))))
    return out


def world(n: int, seed: int, skip_plain: bool, tight: bool) -> None:
    t0 = time.perf_counter()
    w = generate(n, seed=seed)
    c = w.customers.copy()
    print(f"== seeded world: {len(c):,} customers, {int(c['x'].sum()):,} repeat purchases "
          f"({time.perf_counter() - t0:.1f} s to draw)")
    # cxvalue
    t0 = time.perf_counter()
    fit = BGNBD("group", "passive").fit(c, covariates=["log_pre_purchases"])
    s = time.perf_counter() - t0
    print(f"cxvalue BGNBD, group + control in both processes (with SEs): {s:7.1f} s, "
          f"{fit.patterns_:,} patterns, loglik {fit.log_likelihood_:,.1f} (check, by hand: "
          f"{loglik(*fit._individual(c)):,.1f})")
    print("  " + " ".join(f"{k}={v:.3f}" for k, v in fit.params_.items()))
    for g, (pr, dr) in _cx_ratios(fit).items():
        print(f"  {g}: purchase-rate ratio {pr:.3f} (truth {TRUE_EFFECTS['purchase_rate'][g]}), "
              f"dropout ratio {dr:.3f} (truth {TRUE_EFFECTS['dropout'][g]})")
    t0 = time.perf_counter()
    plain = BGNBD().fit(c)
    print(f"cxvalue BGNBD, no covariates: {time.perf_counter() - t0:7.1f} s  " +
          " ".join(f"{k}={plain.params_[k]:.3f}" for k in PUBLISHED) + f"  loglik {plain.log_likelihood_:,.1f}")
    # pymc-marketing
    if not skip_plain:
        model, s = pymc_map(c)
        p = pymc_params(model)
        print(f"pymc-marketing MAP (flat), no covariates: {s:7.1f} s  " +
              " ".join(f"{k}={p[k]:.3f}" for k in PUBLISHED) + f"  loglik {pymc_loglik(model, c):,.1f}")
        del model
    c["detractor"] = (c["group"].astype(str) == "detractor").astype(float)
    c["promoter"] = (c["group"].astype(str) == "promoter").astype(float)
    covs = ["detractor", "promoter", "log_pre_purchases"]
    model, s = pymc_map(c, covs, **(TIGHT if tight else {}))
    p = pymc_params(model)
    print(f"pymc-marketing MAP (flat{', tight L-BFGS-B tolerances' if tight else ''}), "
          f"group + control in both processes: {s:7.1f} s, "
          f"loglik {pymc_loglik(model, c):,.1f} (its model nests cxvalue's: b has coefficients too)")
    print(f"  alpha_scale={p['alpha_scale']:.3f} a_scale={p['a_scale']:.3f} b_scale={p['b_scale']:.3f} r={p['r']:.3f}")
    print(f"  purchase coefs {np.round(p['purchase_coefficient_alpha'], 3)}, dropout a coefs "
          f"{np.round(p['dropout_coefficient_a'], 3)}, dropout b coefs {np.round(p['dropout_coefficient_b'], 3)} ({covs})")
    for g, (pr, dr) in _pymc_ratios(p, covs).items():
        print(f"  {g}: purchase-rate ratio {pr:.3f} (truth {TRUE_EFFECTS['purchase_rate'][g]}), "
              f"dropout-odds ratio {dr:.3f} (truth {TRUE_EFFECTS['dropout'][g]})")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wheels", type=Path, default=None, help="folder of `pip download pymc-marketing`")
    ap.add_argument("--project-venv", type=Path, default=ROOT / ".venv", help="only read: which packages it has")
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--skip-cdnow", action="store_true")
    ap.add_argument("--skip-plain", action="store_true", help="skip pymc-marketing's fit without covariates")
    ap.add_argument("--tight", action="store_true",
                    help=f"pass {TIGHT} to the covariate MAP fit (scipy.optimize.minimize via pymc.find_MAP)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import pymc
    import pymc_marketing
    import pytensor
    print(f"pymc-marketing {pymc_marketing.__version__}, pymc {pymc.__version__}, "
          f"pytensor {pytensor.__version__}, numpy {np.__version__}, pandas {pd.__version__}")
    print()
    if not args.skip_install:
        install_size(args.wheels, args.project_venv)
    if not args.skip_cdnow:
        cdnow()
    for n in args.customers:
        world(n, args.seed, args.skip_plain, args.tight)


if __name__ == "__main__":
    main()
