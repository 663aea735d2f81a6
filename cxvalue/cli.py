"""Command line: ``cxvalue run | demo | compare | validate | synth | params``.

Exit codes (CONTRACT section 3): 0 = done; 2 = invalid input or parameters (message on
stderr names what and where); 1 = anything else.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

# One BLAS thread per process, set before numpy loads (the notebook kernels inherit it). The run
# already keeps the cores busy with DuckDB and with notebooks side by side; a second OpenBLAS
# thread made the least-squares solves of the model fits up to 7 times slower on a busy 2-core
# machine. It also makes results.json the same on machines with any number of cores: threaded
# BLAS splits its sums by the thread count, which moves the last digits of a few intervals.
# Set OPENBLAS_NUM_THREADS yourself to choose otherwise.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Memory the analysis frees is used again by its next array instead of going back to the kernel,
# which would zero every page again when it is asked for once more: at a million customers that
# zeroing took a sixth of the run's CPU (23 of 129 s; 11 s with these settings). glibc's allocator
# keeps arrays up to 1 GiB in its heap and hands the heap back only above 1 GiB free or when the
# run asks it to between parts (``pipeline._release_memory``); numpy's transparent huge pages,
# whose 2 MiB are zeroed whole at first touch, are off. Set for this process here
# (:func:`_keep_freed_memory`) and, through the environment, for the second process and the
# notebook kernels. Set any of them yourself to choose otherwise.
ALLOCATOR = {"NUMPY_MADVISE_HUGEPAGE": "0", "MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
for _var, _value in ALLOCATOR.items():
    os.environ.setdefault(_var, _value)


def _keep_freed_memory() -> None:
    """Apply the environment's ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` to this
    process, which glibc read before they were set (a no-op without glibc)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        for option, var in ((-3, "MALLOC_MMAP_THRESHOLD_"), (-1, "MALLOC_TRIM_THRESHOLD_")):  # M_MMAP_/M_TRIM_THRESHOLD
            libc.mallopt(option, int(os.environ[var]))
    except (OSError, AttributeError, ValueError, ctypes.ArgumentError):  # pragma: no cover - not glibc, or not a C int
        pass


_keep_freed_memory()

import typer  # noqa: E402

from cxvalue.exceptions import CxValueError, InputError  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Prove, in money, what customer experience is worth.")

DATA = typer.Option(None, "--data", help="Folder of CSV/Parquet tables, a DuckDB file, an Ibis URL, or 'demo' (may be left "
                                         "out when the parameter file's source block names every table's file or query).")
CONFIG = typer.Option(None, "--config", help="YAML file of parameters.")
SET = typer.Option(None, "--set", help="Override a parameter: --set scenario.detractor_to_passive=0.2 (repeatable).")


def _fail(exc: BaseException) -> None:
    code = exc.exit_code if isinstance(exc, CxValueError) else 1
    kind = "invalid input" if code == 2 else "error"
    typer.echo(f"cxvalue: {kind}: {exc}", err=True)
    raise typer.Exit(code)


def _params(config: Optional[Path], sets: Optional[list[str]], extra: Optional[dict] = None):
    from cxvalue.config import load_params, parse_set

    overrides = dict(extra or {})
    overrides.update(parse_set(sets))
    return load_params(config, overrides)


OUT = typer.Option(None, "--out", help="Output folder (replaced only when the run succeeds).")
RUNS = typer.Option(None, "--runs-dir", help="Keep this run in RUNS_DIR/<UTC time>/ beside earlier runs; the "
                                            "report shows the trend over them. --out then gets a copy.")


PDF = typer.Option(False, "--pdf", help="Also print report.pdf with headless Chromium (must be installed).")


QUIET = typer.Option(False, "--quiet", "-q", help="Say nothing while running (by default each step and notebook "
                                                  "is reported on stderr: a progress bar on a terminal, plain lines "
                                                  "elsewhere).")


def _run(data: Optional[str], out: Optional[Path], runs_dir: Optional[Path], config: Optional[Path],
         set_: Optional[list[str]], pdf: bool = False, quiet: bool = False) -> None:
    from cxvalue.progress import Reporter, quiet as say_nothing

    progress = say_nothing if quiet else Reporter()
    try:
        from cxvalue.report import run as run_report

        params = _params(config, set_)
        done = run_report(data, params, out, runs_dir=runs_dir, pdf=pdf, progress=progress)
    except Exception as exc:  # noqa: BLE001 - mapped to exit codes
        if isinstance(progress, Reporter):
            progress.close()
        _fail(exc)
    if isinstance(progress, Reporter):
        progress.close()
        typer.echo(f"Done in {progress.elapsed():.0f} s.", err=True)
    typer.echo(f"Report: {done / 'report.html'}")


@app.command()
def run(data: Optional[str] = DATA, out: Optional[Path] = OUT, runs_dir: Optional[Path] = RUNS,
        config: Optional[Path] = CONFIG, set_: Optional[list[str]] = SET, pdf: bool = PDF,
        quiet: bool = QUIET) -> None:
    """Check the data, analyse it once, run every notebook, write report.html, results.json,
    business_case.xlsx, notebooks/ and manifest.json."""
    _run(data, out, runs_dir, config, set_, pdf, quiet)


@app.command()
def demo(out: Optional[Path] = typer.Option(Path("reports/demo"), "--out", help="Output folder."),
         runs_dir: Optional[Path] = RUNS, config: Optional[Path] = CONFIG, set_: Optional[list[str]] = SET,
         pdf: bool = PDF, quiet: bool = QUIET) -> None:
    """Build the bundled synthetic world (20,000 customers, seeded) and run the report on it."""
    _run("demo", out, runs_dir, config, set_, pdf, quiet)


@app.command()
def compare(run_a: Path = typer.Argument(..., help="Earlier run folder."),
            run_b: Path = typer.Argument(..., help="Later run folder.")) -> None:
    """Print what moved between two runs: headline figures, KPIs (against their noise), effects (against their intervals)."""
    try:
        from cxvalue.runs import compare as compare_runs, load_run

        a, b = load_run(run_a), load_run(run_b)
        table = compare_runs(a, b)
        labels = a["run"]["label"], b["run"]["label"]
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    typer.echo(f"A: {run_a}  {labels[0]}\nB: {run_b}  {labels[1]}\n")

    def fmt(v):
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        return f"{v:,.4g}" if abs(v) < 10 else f"{v:,.0f}"

    shown = table.assign(a=table["a"].map(fmt), b=table["b"].map(fmt), change=table["change"].map(fmt))
    typer.echo(shown.to_string(index=False))


@app.command()
def validate(data: Optional[str] = DATA, config: Optional[Path] = CONFIG, set_: Optional[list[str]] = SET) -> None:
    """Check a source against the data contract, print the data-quality table and which report sections
    this data supports; exit 2 exactly where `cxvalue run` would."""
    from cxvalue import data as data_mod

    checked = None
    try:
        from cxvalue.history import history
        from cxvalue.readiness import require, sections, sections_table

        params = _params(config, set_)
        checked = data_mod.check(data, params)
        hist = history(checked, params)
        require(checked, params, hist)
        found = sections(checked, params, hist)
    except Exception as exc:  # noqa: BLE001
        if checked is not None:  # the quality table helps to see why
            typer.echo(data_mod.quality_table(checked.data_quality).to_string(index=False))
        _fail(exc)
    typer.echo(f"Source: {checked.source.description}   as_of: {checked.as_of}")
    typer.echo(data_mod.quality_table(checked.data_quality).to_string(index=False))
    typer.echo("\nReport sections on this data:")
    import pandas as pd

    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        typer.echo(sections_table(found).to_string(index=False))


@app.command()
def synth(customers: int = typer.Option(20_000, "--customers", min=1, help="Number of customers."),
          seed: int = typer.Option(42, "--seed"), out: Path = typer.Option(..., "--out", help="Folder to write."),
          fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
          confounding: float = typer.Option(0.6, "--confounding", help="How strongly size and plan drive satisfaction."),
          messy: bool = typer.Option(False, "--messy", help="Add rows that the data checks must exclude.")) -> None:
    """Write a synthetic world (the four tables and truth.json) to a folder."""
    try:
        from cxvalue.synthetic import generate, write_world

        if fmt not in ("parquet", "csv"):
            raise InputError(f"--format {fmt}: use parquet or csv")
        world = generate(n_customers=customers, seed=seed, confounding=confounding, messy=messy)
        write_world(world, out, fmt)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    typer.echo(f"Wrote {customers:,} customers ({len(world.transactions):,} transactions) to {out}")


@app.command()
def params() -> None:
    """List every parameter with its default and meaning."""
    from cxvalue.config import describe

    typer.echo(describe())


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
