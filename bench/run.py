"""Benchmark: the customer history with cxvalue (DuckDB + Ibis) against plain pandas.

    .venv/bin/python bench/run.py                      # 1,000,000 customers (make bench)
    .venv/bin/python bench/run.py --customers 50000    # quick check

Steps, each heavy one in a fresh subprocess so that its peak memory is its own:

1. the synthetic world (``cxvalue.synthetic.generate`` + ``write_world``) is written to
   ``bench/out/world-<n>/`` unless it is already there;
2. the history is built with cxvalue (``data.check`` + ``history.history``), then with
   plain pandas (``bench/pandas_history.py``); each worker reports its wall time and its
   peak RSS (``ru_maxrss``) at the end of the timed section;
3. the two histories are compared (same customers, same group, every numeric column within
   1e-6 relative); any mismatch is printed and the exit code is 1;
4. the results table is printed, written to ``bench/out/results-<n>.{md,json}`` and, for the
   full-size run (or with ``--readme``), into the "Results" section of ``bench/README.md``.

See bench/README.md for what is measured and the target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
README = HERE / "README.md"
DEFAULT_CUSTOMERS = 1_000_000
TABLES = ("customers", "responses", "transactions", "contacts")
TARGET_SPEEDUP = 4.0
TARGET_MEMORY_RATIO = 1 / 3
RTOL = 1e-6
ATOL = 1e-9  # sums that cancel to ~0 (refunds) differ by float rounding only
RESULTS_START = "<!-- results:start (written by bench/run.py; do not edit by hand) -->"
RESULTS_END = "<!-- results:end -->"


# --------------------------------------------------------------------------- helpers


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _gb(n: float) -> float:
    return n / 1e9


def world_dir(n: int, seed: int, fmt: str) -> Path:
    name = f"world-{n}"
    if seed != 42:
        name += f"-seed{seed}"
    if fmt != "parquet":
        name += f"-{fmt}"
    return OUT / name


def _world_ready(path: Path, n: int, seed: int, fmt: str) -> bool:
    ext = "parquet" if fmt == "parquet" else "csv"
    if not (path / "truth.json").is_file() or not all((path / f"{t}.{ext}").is_file() for t in TABLES):
        return False
    truth = json.loads((path / "truth.json").read_text())
    if truth.get("n_customers") != n or truth.get("seed") != seed or truth.get("messy"):
        return False
    info = path / "bench-world.json"
    if info.is_file() and json.loads(info.read_text()).get("generator") != _synthetic_fingerprint():
        print(f"world: {path.relative_to(ROOT)} was made by another version of cxvalue/synthetic.py", flush=True)
        return False
    return True


def _row_counts(path: Path, fmt: str) -> dict[str, int]:
    info = path / "bench-world.json"
    if info.is_file():
        return json.loads(info.read_text())["rows"]
    rows = {}
    for t in TABLES:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows[t] = pq.ParquetFile(path / f"{t}.parquet").metadata.num_rows
        else:
            with open(path / f"{t}.csv", "rb") as fh:
                rows[t] = sum(1 for _ in fh) - 1
    return rows


def _warm_cache(path: Path) -> None:
    """Read every input file once so that neither timed path pays for a cold disk."""
    for f in sorted(path.iterdir()):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def _run_child(args: list[str], log: Path) -> tuple[int, dict]:
    """Run ``bench/run.py <args>`` in a fresh interpreter; return (exit code, rusage)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return proc.returncode, {"process_wall_s": wall, "process_peak_rss_bytes": ru.ru_maxrss * 1024,
                             "user_s": ru.ru_utime, "sys_s": ru.ru_stime}


def _tail(log: Path, n: int = 30) -> str:
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- workers


def worker_generate(a: argparse.Namespace) -> None:
    from cxvalue import synthetic

    t0 = time.perf_counter()
    world = synthetic.generate(n_customers=a.customers, seed=a.seed, messy=False)
    t1 = time.perf_counter()
    target = Path(a.world)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    synthetic.write_world(world, tmp, fmt=a.format)
    rows = {name: len(df) for name, df in world.tables.items()}
    info = {"rows": rows, "generate_s": t1 - t0, "write_s": time.perf_counter() - t1,
            "peak_rss_bytes": _peak_rss_bytes(), "format": a.format, "seed": a.seed,
            "n_customers": a.customers, "as_of": world.truth["as_of"], "generator": _synthetic_fingerprint()}
    (tmp / "bench-world.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    print(json.dumps(info, indent=2))


def worker_cxvalue(a: argparse.Namespace) -> dict:
    t_imp = time.perf_counter()
    from cxvalue import data, history
    from cxvalue.config import load_params

    import_s = time.perf_counter() - t_imp
    rss_after_import = _current_rss_bytes()

    t0, c0 = time.perf_counter(), _cpu_s()
    p = load_params(overrides={"as_of": a.as_of})
    source = data.open_source(a.world)
    settings = {}
    if a.duckdb_threads:
        settings["threads"] = int(a.duckdb_threads)
    if a.duckdb_memory_limit:
        settings["memory_limit"] = f"'{a.duckdb_memory_limit}'"
    if a.duckdb_preserve_insertion_order is not None:
        settings["preserve_insertion_order"] = a.duckdb_preserve_insertion_order
    for k, v in settings.items():
        source.con.raw_sql(f"SET {k} = {v}")
    cd = data.check(source, p)
    t1 = time.perf_counter()
    h = history.history(cd, p)
    t2, c2 = time.perf_counter(), _cpu_s()
    peak = _peak_rss_bytes()
    duck = source.con.raw_sql(
        "SELECT current_setting('threads'), current_setting('memory_limit'), "
        "current_setting('preserve_insertion_order')").fetchall()[0]
    return {"history": h, "wall_s": t2 - t0, "cpu_s": c2 - c0, "peak_rss_bytes": peak, "import_s": import_s,
            "rss_after_import_bytes": rss_after_import,
            "phases_s": {"read + contract checks (data.check)": t1 - t0, "history (query + to_pandas)": t2 - t1},
            "duckdb": {"threads": duck[0], "memory_limit": duck[1], "preserve_insertion_order": duck[2]},
            "data_quality": cd.data_quality}


def worker_pandas(a: argparse.Namespace) -> dict:
    t_imp = time.perf_counter()
    sys.path.insert(0, str(HERE))
    import pandas_history

    import_s = time.perf_counter() - t_imp
    rss_after_import = _current_rss_bytes()

    t0, c0 = time.perf_counter(), _cpu_s()
    tables = pandas_history.read_tables(a.world)
    t1 = time.perf_counter()
    h = pandas_history.history(a.world, a.as_of, tables=tables, **json.loads(a.params_json or "{}"))
    del tables
    t2, c2 = time.perf_counter(), _cpu_s()
    peak = _peak_rss_bytes()
    return {"history": h, "wall_s": t2 - t0, "cpu_s": c2 - c0, "peak_rss_bytes": peak, "import_s": import_s,
            "rss_after_import_bytes": rss_after_import,
            "phases_s": {"read (pd.read_parquet)" if a.format == "parquet" else "read (pd.read_csv)": t1 - t0, "history (filters, merges, groupbys)": t2 - t1}}


def run_worker(a: argparse.Namespace) -> None:
    if a.worker == "generate":
        worker_generate(a)
        return
    fn = worker_cxvalue if a.worker == "cxvalue" else worker_pandas
    res = fn(a)
    h = res.pop("history")
    res["rows"] = len(h)
    h.to_parquet(a.history_out, index=False)
    Path(a.result).write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res, indent=2, default=str))


# --------------------------------------------------------------------------- comparison


def compare(cx, pdh) -> list[str]:
    """Differences between the two histories (empty when they agree)."""
    import numpy as np
    import pandas as pd

    problems: list[str] = []
    cx_cols, pd_cols = list(cx.columns), list(pdh.columns)
    if set(cx_cols) != set(pd_cols):
        problems.append(f"columns differ: only cxvalue {sorted(set(cx_cols) - set(pd_cols))}, "
                        f"only pandas {sorted(set(pd_cols) - set(cx_cols))}")
    ids_cx, ids_pd = pd.Index(cx["customer_id"].astype(str)), pd.Index(pdh["customer_id"].astype(str))
    for what, idx in (("cxvalue", ids_cx), ("pandas", ids_pd)):
        if idx.has_duplicates:
            problems.append(f"{what}: {int(idx.duplicated().sum())} customers on more than one row")
    only_cx, only_pd = ids_cx.difference(ids_pd), ids_pd.difference(ids_cx)
    if len(only_cx) or len(only_pd):
        problems.append(f"customers differ: {len(only_cx)} only in cxvalue (e.g. {list(only_cx[:5])}), "
                        f"{len(only_pd)} only in pandas (e.g. {list(only_pd[:5])})")
    a = cx.assign(customer_id=cx["customer_id"].astype(str)).set_index("customer_id")
    b = pdh.assign(customer_id=pdh["customer_id"].astype(str)).set_index("customer_id")
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    for col in [c for c in cx_cols if c in pd_cols and c != "customer_id"]:
        x, y = a[col], b[col]
        if pd.api.types.is_datetime64_any_dtype(x) or pd.api.types.is_datetime64_any_dtype(y):
            x, y = pd.to_datetime(x).astype("datetime64[s]"), pd.to_datetime(y).astype("datetime64[s]")
            bad = ~((x == y) | (x.isna() & y.isna()))
        elif pd.api.types.is_bool_dtype(x) or pd.api.types.is_bool_dtype(y):
            bad = x.astype("boolean").ne(y.astype("boolean")).fillna(True) & ~(x.isna() & y.isna())
        elif (pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y)):
            xf, yf = x.astype("float64").to_numpy(), y.astype("float64").to_numpy()
            both_nan = np.isnan(xf) & np.isnan(yf)
            close = np.abs(xf - yf) <= np.maximum(RTOL * np.maximum(np.abs(xf), np.abs(yf)), ATOL)
            bad = pd.Series(~(close | both_nan), index=x.index)
        else:  # text / categorical (e.g. group); CSV covariates may be text on one side
            xs, ys = x.astype("object").astype(str), y.astype("object").astype(str)
            bad = ~((xs == ys) | (x.isna() & y.isna()))
        n_bad = int(bad.sum())
        if n_bad:
            ex = pd.DataFrame({"cxvalue": x[bad], "pandas": y[bad]}).head(5)
            problems.append(f"column '{col}': {n_bad:,} of {len(common):,} customers differ, e.g.\n"
                            + ex.to_string().replace("\n", "\n    "))
    return problems


# --------------------------------------------------------------------------- report


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "ram_gb": round(ram / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version()}


def code_version() -> str:
    """The commit the run measured, flagged when cxvalue/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "cxvalue"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in cxvalue/" if dirty else "")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("cxvalue", "pandas", "duckdb", "ibis-framework", "pyarrow", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    return out


def results_table(res: dict) -> str:
    cx, pdr = res["cxvalue"], res["pandas"]
    speedup = pdr["wall_s"] / cx["wall_s"]
    mem_ratio = cx["peak_rss_bytes"] / pdr["peak_rss_bytes"]
    rows = [
        "| path | wall time (s) | CPU time (s) | peak RSS (GB) | speed-up vs pandas | memory vs pandas |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| cxvalue (DuckDB + Ibis) | {cx['wall_s']:.1f} | {cx.get('cpu_s', float('nan')):.1f} | {_gb(cx['peak_rss_bytes']):.2f} | {speedup:.2f}x | {mem_ratio:.2f} |",
        f"| plain pandas | {pdr['wall_s']:.1f} | {pdr.get('cpu_s', float('nan')):.1f} | {_gb(pdr['peak_rss_bytes']):.2f} | 1.00x | 1.00 |",
    ]
    ok_t = speedup >= TARGET_SPEEDUP
    ok_m = mem_ratio <= TARGET_MEMORY_RATIO
    rows.append("")
    rows.append(f"Target: at least {TARGET_SPEEDUP:.0f}x faster -> **{'met' if ok_t else 'missed'}** ({speedup:.2f}x); "
                f"at most 1/3 of the memory -> **{'met' if ok_m else 'missed'}** ({mem_ratio:.2f}).")
    return "\n".join(rows)


def results_markdown(res: dict) -> str:
    m, v, w = res["machine"], res["versions"], res["world"]
    rows = w["rows"]
    cx, pdr = res["cxvalue"], res["pandas"]
    phases = "\n".join(
        f"| {name} | {label} | {secs:.1f} |"
        for name, r in (("cxvalue", cx), ("pandas", pdr)) for label, secs in r["phases_s"].items())
    agree = ("**yes**: same customers, same group, every column equal (numbers within 1e-6 relative)"
             if not res["problems"] else f"**NO**: {len(res['problems'])} difference(s), see the run's output")
    duck = cx.get("duckdb", {})
    return f"""Run of {res['date']} (`{res['command']}`).

- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GiB RAM; {m['os']}; Python {m['python']}
- Code: cxvalue at {res.get('code', 'unknown')}
- Packages: pandas {v['pandas']}, duckdb {v['duckdb']}, ibis-framework {v['ibis-framework']}, pyarrow {v['pyarrow']}, numpy {v['numpy']}
- World: {w['customers']:,} customers (seed {w['seed']}, {w['format']}): {rows['customers']:,} customers rows, {rows['transactions']:,} transactions, {rows['contacts']:,} contacts, {rows['responses']:,} responses; history: {cx['rows']:,} customers
- DuckDB settings: threads={duck.get('threads')}, memory_limit={duck.get('memory_limit')}, preserve_insertion_order={duck.get('preserve_insertion_order')}
- Histories agree: {agree}

{results_table(res)}

Where the time goes:

| path | phase | s |
| --- | --- | ---: |
{phases}

All timed runs (wall s / peak GB / load average just before): {_runs_text(res)}.

Whole worker processes (interpreter start, imports and writing the history out for the comparison
included): cxvalue {cx['process_wall_s']:.1f} s / {_gb(cx['process_peak_rss_bytes']):.2f} GB, pandas {pdr['process_wall_s']:.1f} s / {_gb(pdr['process_peak_rss_bytes']):.2f} GB;
RSS right after the imports: cxvalue {_gb(cx['rss_after_import_bytes']):.2f} GB, pandas {_gb(pdr['rss_after_import_bytes']):.2f} GB.
"""


def _runs_text(res: dict) -> str:
    parts = []
    for name in ("cxvalue", "pandas"):
        rs = res[name].get("runs", [])
        parts.append(f"{name} " + ", ".join(f"{r['wall_s']:.1f} / {_gb(r['peak_rss_bytes']):.2f} / {r['load_before']:.1f}" for r in rs))
    return "; ".join(parts)


def update_readme(section: str) -> None:
    text = README.read_text() if README.is_file() else ""
    block = f"{RESULTS_START}\n{section.rstrip()}\n{RESULTS_END}"
    if RESULTS_START in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_START, 1)
        tail = rest.split(RESULTS_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    README.write_text(text)


# --------------------------------------------------------------------------- main


def baseline_params() -> dict:
    """cxvalue's current defaults that the pandas baseline takes as arguments.

    The rest of the definitions (metric, bands, first relationship response) are written
    into bench/pandas_history.py; stop if cxvalue's defaults drifted from them.
    """
    sys.path.insert(0, str(HERE))
    import pandas_history
    from cxvalue.config import bands_for, load_params

    p = load_params()
    drift = []
    if {k: tuple(v) for k, v in bands_for(p).items()} != pandas_history.NPS_BANDS:
        drift.append(f"NPS bands are now {bands_for(p)}")
    for key, want in (("metric", "nps"), ("index_response", "first"), ("survey_type", "relationship"),
                      ("study_start", None), ("study_end", None)):
        if p.get(key) != want:
            drift.append(f"{key} default is now {p.get(key)!r}")
    if drift:
        raise SystemExit("bench/pandas_history.py no longer matches cxvalue's defaults: " + "; ".join(drift))
    return {"contact_cost": p["contact_cost"], "window_months": p["window_months"]}


def _synthetic_fingerprint() -> str:
    """sha256 of cxvalue/synthetic.py: a stored world is rebuilt when the generator changes."""
    import hashlib

    return hashlib.sha256((ROOT / "cxvalue" / "synthetic.py").read_bytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS, help="customers in the world (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="file format of the world")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per path; the fastest wall time and the highest peak RSS are reported")
    ap.add_argument("--only", choices=("cxvalue", "pandas"), help="time one path only (no comparison)")
    ap.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                    help="rewrite the Results section of bench/README.md (default: only for the full 1,000,000 run)")
    ap.add_argument("--duckdb-threads", type=int, help="SET threads on cxvalue's DuckDB connection")
    ap.add_argument("--duckdb-memory-limit", help="SET memory_limit on cxvalue's DuckDB connection, e.g. 2GB")
    ap.add_argument("--duckdb-preserve-insertion-order", choices=("true", "false"),
                    help="SET preserve_insertion_order on cxvalue's DuckDB connection")
    # internal: a worker subprocess
    ap.add_argument("--worker", choices=("generate", "cxvalue", "pandas"), help=argparse.SUPPRESS)
    ap.add_argument("--world", help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--history-out", help=argparse.SUPPRESS)
    ap.add_argument("--params-json", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.worker:
        run_worker(a)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    logs = OUT / "logs"
    logs.mkdir(exist_ok=True)
    bparams = baseline_params()
    n, tag = a.customers, f"{a.customers}" + ("" if a.format == "parquet" else f"-{a.format}")
    world = world_dir(n, a.seed, a.format)
    command = "python bench/run.py" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")

    # 1. the world ---------------------------------------------------------------------
    if _world_ready(world, n, a.seed, a.format):
        print(f"world: reusing {world.relative_to(ROOT)}", flush=True)
    else:
        print(f"world: generating {n:,} customers (seed {a.seed}) into {world.relative_to(ROOT)} ...", flush=True)
        code, ru = _run_child(["--worker", "generate", "--customers", str(n), "--seed", str(a.seed),
                               "--format", a.format, "--world", str(world)], logs / f"generate-{tag}.log")
        if code:
            print(_tail(logs / f"generate-{tag}.log"), file=sys.stderr)
            print("world generation failed", file=sys.stderr)
            return 2
        print(f"world: generated in {ru['process_wall_s']:.0f} s, peak RSS {_gb(ru['process_peak_rss_bytes']):.1f} GB", flush=True)
    rows = _row_counts(world, a.format)
    as_of = json.loads((world / "truth.json").read_text())["as_of"]
    print("world: " + ", ".join(f"{t} {rows[t]:,}" for t in TABLES), flush=True)
    _warm_cache(world)

    # 2. the two paths -----------------------------------------------------------------
    duck_args = []
    if a.duckdb_threads:
        duck_args += ["--duckdb-threads", str(a.duckdb_threads)]
    if a.duckdb_memory_limit:
        duck_args += ["--duckdb-memory-limit", a.duckdb_memory_limit]
    if a.duckdb_preserve_insertion_order:
        duck_args += ["--duckdb-preserve-insertion-order", a.duckdb_preserve_insertion_order]
    res: dict = {}
    runs: dict[str, list] = {}
    paths = [a.only] if a.only else ["cxvalue", "pandas"]
    for path in paths:
        best = None
        for i in range(max(1, a.repeat)):
            result = OUT / f"result-{path}-{tag}.json"
            hist = OUT / f"history-{path}-{tag}.parquet"
            log = logs / f"{path}-{tag}.log"
            load = os.getloadavg()[0]
            print(f"{path}: run {i + 1}/{a.repeat} (load average {load:.2f}) ...", flush=True)
            code, ru = _run_child(["--worker", path, "--world", str(world), "--as-of", as_of,
                                   "--result", str(result), "--history-out", str(hist),
                                   *(duck_args if path == "cxvalue" else ["--params-json", json.dumps(bparams)])], log)
            if code:
                print(_tail(log), file=sys.stderr)
                print(f"{path}: worker failed with exit code {code} (log: {log.relative_to(ROOT)})", file=sys.stderr)
                return 2
            r = json.loads(result.read_text()) | ru | {"load_before": load}
            print(f"{path}: {r['wall_s']:.1f} s, peak RSS {_gb(r['peak_rss_bytes']):.2f} GB, {r['rows']:,} customers  "
                  + "(" + ", ".join(f"{k} {v:.1f} s" for k, v in r["phases_s"].items()) + ")", flush=True)
            runs.setdefault(path, []).append({k: r[k] for k in ("wall_s", "peak_rss_bytes", "load_before")})
            if best is None or r["wall_s"] < best["wall_s"]:
                best = r
                shutil.copyfile(hist, OUT / f"history-{path}-{tag}.best.parquet")
        # wall time: the fastest run; peak RSS: the highest of all runs (memory does not
        # suffer from a busy machine the way time does, but varies with thread scheduling)
        res[path] = best | {"runs": runs[path], "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs[path])}
    if a.only:
        return 0

    # 3. agreement ---------------------------------------------------------------------
    import pandas as pd

    cx = pd.read_parquet(OUT / f"history-cxvalue-{tag}.best.parquet")
    pdh = pd.read_parquet(OUT / f"history-pandas-{tag}.best.parquet")
    problems = compare(cx, pdh)
    del cx, pdh

    # 4. report ------------------------------------------------------------------------
    res.update({
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": machine_info(),
        "versions": versions(),
        "code": code_version(),
        "world": {"customers": n, "seed": a.seed, "format": a.format, "rows": rows, "dir": str(world.relative_to(ROOT))},
        "problems": problems,
        "speedup": res["pandas"]["wall_s"] / res["cxvalue"]["wall_s"],
        "memory_ratio": res["cxvalue"]["peak_rss_bytes"] / res["pandas"]["peak_rss_bytes"],
    })
    md = results_markdown(res)
    (OUT / f"results-{tag}.md").write_text(md)
    (OUT / f"results-{tag}.json").write_text(json.dumps(res, indent=2, default=str))
    print()
    print(results_table(res))
    print()
    if problems:
        print("HISTORIES DISAGREE:")
        for p in problems:
            print("  - " + p)
    else:
        print("histories agree: same customers, same group, every column equal (numbers within 1e-6 relative)")
    write_readme = a.readme if a.readme is not None else (n == DEFAULT_CUSTOMERS and a.format == "parquet" and a.seed == 42)
    if write_readme:
        update_readme(md)
        print(f"results written to {README.relative_to(ROOT)} and {(OUT / f'results-{tag}.md').relative_to(ROOT)}")
    else:
        print(f"results written to {(OUT / f'results-{tag}.md').relative_to(ROOT)} (README unchanged; --readme to update it)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
