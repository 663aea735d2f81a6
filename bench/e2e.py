"""Benchmark: the whole `cxvalue run` on the 1,000,000-customer world, `make report` on the demo,
and one DuckDB pass over the transactions as the yardstick.

    .venv/bin/python bench/e2e.py                        # 1,000,000 customers (make bench-run)
    .venv/bin/python bench/e2e.py --customers 50000      # quick check
    .venv/bin/python bench/e2e.py --code /tmp/old-tree   # time another checkout (before/after)

Each step runs in a fresh subprocess of a fresh worker, so that its resource usage is its own:

1. **duckdb**: one scan-aggregate of ``transactions.parquet`` (count, sum of amount and the
   last date per customer), DuckDB's default threads;
2. **run**: ``cxvalue run --data <world> --out bench/out/e2e-<n>`` (no tty: the CLI prints one
   plain line per step and notebook, which gives the breakdown);
3. **demo** (``make report`` without the install step): ``cxvalue demo --out ... --runs-dir ...
   --config data/demo.yaml`` on the 20,000-customer demo world (built first if missing).

For each: wall time, CPU time (user + system of the worker's whole process tree) and the
**largest process's peak RSS** (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the worker: the
biggest of the CLI, every notebook kernel and its second process, as each is waited for); the
CLI's progress lines give its own process's peak after each step. Results go to ``bench/out/e2e-<n>.{md,json}``; a full-size
run (or ``--readme``) rewrites the block between the ``e2e`` markers of bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
README = HERE / "README.md"
START = "<!-- e2e:start (written by bench/e2e.py; do not edit by hand) -->"
END = "<!-- e2e:end -->"
TARGET_RUN_S, TARGET_RSS_GB, TARGET_DEMO_S = 60.0, 4.0, 25.0

sys.path.insert(0, str(HERE))
import run as bench_run  # noqa: E402  (world building and machine facts are shared)


def _gb(n: float) -> float:
    return n / 1e9


# --------------------------------------------------------------------------- worker


def worker(cmd: list[str], env: dict[str, str], cwd: str, log: str) -> dict:
    """Run ``cmd`` as this process's only child; report wall, CPU and peak RSS."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"exit": os.waitstatus_to_exitcode(status), "wall_s": wall,
            "cpu_s": children.ru_utime + children.ru_stime,
            "largest_process_rss_bytes": children.ru_maxrss * 1024,
            "cli_process_rss_bytes": ru.ru_maxrss * 1024}


def duckdb_pass(path: str) -> None:
    import duckdb

    t0 = time.perf_counter()
    n = duckdb.sql(f"SELECT count(*) FROM (SELECT customer_id, count(*) AS n, sum(amount) AS s, max(date) AS d "
                   f"FROM read_parquet('{path}') GROUP BY customer_id)").fetchone()[0]
    print(json.dumps({"customers": n, "seconds": time.perf_counter() - t0}))


# --------------------------------------------------------------------------- report


def markdown(doc: dict) -> str:
    m, v, w = doc["machine"], doc["versions"], doc["world"]
    rows = ["| step | wall (s) | CPU, whole process tree (s) | largest process peak RSS (GB) | load average before | target |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    names = {"duckdb": "one DuckDB pass over the transactions", "run": f"`cxvalue run`, {w['customers']:,} customers",
             "demo": "`make report` (demo, 20,000 customers; install step excluded)"}
    for key in ("duckdb", "run", "demo"):
        if key not in doc:
            continue
        r = doc[key]
        wall = r.get("query_s", r["wall_s"])
        if key == "run":
            target = (f"<= {TARGET_RUN_S:.0f} s: **{'met' if wall <= TARGET_RUN_S else 'missed'}**; <= {TARGET_RSS_GB:.0f} GB: "
                      f"**{'met' if _gb(r['largest_process_rss_bytes']) <= TARGET_RSS_GB else 'missed'}**")
        elif key == "demo":
            target = f"<= {TARGET_DEMO_S:.0f} s: **{'met' if wall <= TARGET_DEMO_S else 'missed'}**"
        else:
            target = "yardstick"
        rows.append(f"| {names[key]} | {wall:.1f} | {r['cpu_s']:.1f} | {_gb(r['largest_process_rss_bytes']):.2f} | "
                    f"{r['load_before']:.1f} | {target} |")
    out = [f"Run of {doc['date']} (`python bench/e2e.py{' ' + doc['args'] if doc.get('args') else ''}`), cxvalue at {doc['code']}.", "",
           f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GiB RAM; {m['os']}; Python {m['python']}",
           f"- Packages: pandas {v['pandas']}, duckdb {v['duckdb']}, ibis-framework {v['ibis-framework']}, pyarrow {v['pyarrow']}, numpy {v['numpy']}",
           f"- World: {w['customers']:,} customers (seed {w['seed']}): " + ", ".join(f"{n:,} {t}" for t, n in w["rows"].items()),
           "", *rows]
    for key in ("run", "demo"):
        if key in doc and doc[key].get("steps"):
            out += ["", f"Where the time of {names[key]} went (the CLI's progress lines, in the order they ended; the "
                        f"notebooks and the second process overlap the analysis):", "",
                        "| step | s | run process's peak memory so far (GB) |", "| --- | ---: | ---: |"]
            out += [f"| {k} | {x[0]:.1f} | {'' if x[1] is None else f'{x[1]:.1f}'} |" for k, x in doc[key]["steps"].items()]
    return "\n".join(out) + "\n"


def update_readme(section: str) -> None:
    text = README.read_text()
    block = f"{START}\n{section.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## The whole run\n\n" + block + "\n"
    README.write_text(text)


# --------------------------------------------------------------------------- steps


def _measure(name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run ``cmd`` inside a fresh worker process so RUSAGE_CHILDREN covers this step only."""
    log = OUT / "logs" / f"e2e-{name}.log"
    res = OUT / f"e2e-{name}.result.json"
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import e2e; "
            f"json.dump(e2e.worker({cmd!r}, {env!r}, {str(cwd)!r}, {str(log)!r}), open({str(res)!r}, 'w'))")
    load = os.getloadavg()[0]
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    out = json.loads(res.read_text()) | {"load_before": load, "log": str(log.relative_to(ROOT))}
    out["steps"] = _steps(log.read_text())
    return out


def _steps(text: str) -> dict[str, list]:
    """The CLI's plain progress lines: ``[m:ss] step: done in N s (peak memory so far X GB)``
    -> {step: [seconds, GB or None]}."""
    pattern = r"^\[\d+:\d\d\] (.+?): done in ([0-9.]+) s(?: \(peak memory so far ([0-9.]+) GB\))?$"
    return {m.group(1): [float(m.group(2)), float(m.group(3)) if m.group(3) else None]
            for m in re.finditer(pattern, text, re.M)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=bench_run.DEFAULT_CUSTOMERS)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose cxvalue to run (PYTHONPATH; default: this one)")
    ap.add_argument("--only", choices=("duckdb", "run", "demo"), action="append", help="steps to run (repeatable)")
    ap.add_argument("--label", default="", help="name of this measurement in the results (e.g. before, after)")
    ap.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None)
    a = ap.parse_args(argv)
    steps = a.only or ["duckdb", "run", "demo"]
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    n = a.customers
    world = bench_run.world_dir(n, a.seed, "parquet")
    if not bench_run._world_ready(world, n, a.seed, "parquet"):
        print(f"world: generating {n:,} customers into {world.relative_to(ROOT)} (bench/run.py's worker) ...", flush=True)
        code, _ = bench_run._run_child(["--worker", "generate", "--customers", str(n), "--seed", str(a.seed),
                                        "--format", "parquet", "--world", str(world)], OUT / "logs" / f"generate-{n}.log")
        if code:
            print("world generation failed", file=sys.stderr)
            return 2
    bench_run._warm_cache(world)
    as_of = json.loads((world / "truth.json").read_text())["as_of"]
    code_dir = a.code.resolve()
    env = {**os.environ, "PYTHONPATH": str(code_dir), "CXVALUE_DEMO_DIR": str(OUT / "demo-world")}
    env.pop("CXVALUE_WORKERS", None)
    cli = [str(Path(sys.executable).with_name("cxvalue"))]
    tag = f"{n}" + (f"-{a.label}" if a.label else "")
    res: dict = {}
    if "duckdb" in steps:
        print("duckdb: one pass over the transactions ...", flush=True)
        r = _measure(f"duckdb-{tag}", [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); "
                                       f"import e2e; e2e.duckdb_pass({str(world / 'transactions.parquet')!r})"],
                     env, ROOT)
        r["query_s"] = json.loads((ROOT / r["log"]).read_text().strip().splitlines()[-1])["seconds"]
        res["duckdb"] = r
        print(f"duckdb: {r['query_s']:.1f} s (process {r['wall_s']:.1f} s)", flush=True)
    if "run" in steps:
        print(f"run: cxvalue run on {n:,} customers ({code_dir}) ...", flush=True)
        r = _measure(f"run-{tag}", [*cli, "run", "--data", str(world), "--out", str(OUT / f"e2e-report-{tag}"),
                                    "--set", f"as_of={as_of}"], env, ROOT)
        res["run"] = r
        print(f"run: {r['wall_s']:.1f} s, largest process {_gb(r['largest_process_rss_bytes']):.2f} GB, exit {r['exit']}",
              flush=True)
    if "demo" in steps:
        demo_out = OUT / f"e2e-demo-{tag}"
        warm = [*cli, "demo", "--out", str(demo_out), "--config", str(code_dir / "data" / "demo.yaml"), "--quiet"]
        if not (OUT / "demo-world" / "truth.json").is_file():
            print("demo: building the demo world ...", flush=True)
            subprocess.run([sys.executable, "-c", "from cxvalue.synthetic import demo_dir; demo_dir()"], env=env, check=True)
        print("demo: cxvalue demo (make report without the install step) ...", flush=True)
        r = _measure(f"demo-{tag}", [*cli, "demo", "--out", str(demo_out), "--runs-dir", str(OUT / f"e2e-demo-runs-{tag}"),
                                     "--config", str(code_dir / "data" / "demo.yaml")], env, ROOT)
        del warm
        res["demo"] = r
        print(f"demo: {r['wall_s']:.1f} s, largest process {_gb(r['largest_process_rss_bytes']):.2f} GB, exit {r['exit']}",
              flush=True)
    code_version = subprocess.run(["git", "-C", str(code_dir), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip() or str(code_dir)
    doc = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "label": a.label,
           "code": code_version, "machine": bench_run.machine_info(), "versions": bench_run.versions(),
           "world": {"customers": n, "seed": a.seed, "rows": bench_run._row_counts(world, "parquet")}, **res}
    doc["args"] = " ".join(argv if argv is not None else sys.argv[1:])
    (OUT / f"e2e-{tag}.json").write_text(json.dumps(doc, indent=2))
    md = markdown(doc)
    (OUT / f"e2e-{tag}.md").write_text(md)
    print(md)
    if a.readme if a.readme is not None else (n == bench_run.DEFAULT_CUSTOMERS and not a.only and a.code.resolve() == ROOT):
        update_readme(md)
        print(f"results written to {README.relative_to(ROOT)}")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "steps"} for k, v in res.items()}, indent=1))
    return 0 if all(r["exit"] == 0 for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
