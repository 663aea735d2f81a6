"""Run the notebooks with papermill and leave a complete, atomic output folder.

``DIR/`` gets ``results.json``, ``report.html``, ``notebooks/*.ipynb`` and
``manifest.json`` (CONTRACT section 5). The run is built in a hidden folder beside
``DIR`` and swapped in only when everything succeeded: a failed run never touches an
earlier report; its partly executed notebooks are kept in ``DIR.failed/`` for debugging.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager
from traitlets import default

from cxvalue import config, data
from cxvalue.exceptions import InputError, NotebookError
from cxvalue.progress import Progress, quiet
from cxvalue.results import dumps, merge_parts

__all__ = ["notebooks", "run", "KERNEL_NAME"]

KERNEL_NAME = "cxvalue"
PACKAGES = ["cxvalue", "pandas", "numpy", "statsmodels", "duckdb", "ibis-framework", "pyarrow", "altair",
            "vl-convert-python", "papermill", "nbconvert", "nbformat", "ipykernel"]
MANIFEST = "manifest.json"


def notebooks() -> list[Path]:
    """The report notebooks in run order (``NN-*.ipynb``); ``$CXVALUE_NOTEBOOKS`` overrides the folder."""
    folder = Path(os.environ.get("CXVALUE_NOTEBOOKS") or Path(__file__).resolve().parents[1] / "notebooks")
    found = sorted(folder.glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise NotebookError(f"no notebooks found in {folder}")
    return found


def _waits_for(nb: Path) -> int:
    """When notebook ``nb`` can run to its end: -1 at once (it shows only the core analysis), else
    the place, in :func:`cxvalue.store.stored_order`, of the last part of the rest of the
    analysis it reads (read from its code, for the run order only: a notebook waits for what it
    reads whatever the order)."""
    import nbformat

    from cxvalue.store import stored_order, waits_for_the_rest

    code = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code")
    order = stored_order()
    read = [name for name in re.findall(r"\banalysis\.(\w+)", code) if waits_for_the_rest(name)]
    return max((order.index(n) if n in order else len(order) for n in read), default=-1)


def run_order(notebook_files: list[Path]) -> list[Path]:
    """The notebooks that show only the core analysis first (they run while the run computes the
    rest), then the others in the order the run stores the parts they wait for; ties in name
    order. The report keeps the name order."""
    return sorted(notebook_files, key=_waits_for)


def ensure_kernel() -> str:
    """Make sure the ``cxvalue`` kernel (this Python) is registered; return its name."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL_NAME not in specs:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name=KERNEL_NAME, display_name="cxvalue")
    return KERNEL_NAME


class IPCKernelManager(KernelManager):
    """Talk to the notebook kernel over local IPC sockets, not TCP.

    Nothing listens on a network port, and ipykernel's warning about unencrypted TCP goes away.
    Each kernel's sockets get their own path, so kernels started at the same time (the run
    executes notebooks side by side) cannot pick the same one.
    """

    transport = "ipc"

    @default("ip")
    def _unique_ip(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"cxvalue-{uuid.uuid4().hex[:12]}-ipc")


def _check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise InputError(
            f"--out {out}: exists and is not an earlier cxvalue run (no {MANIFEST}); "
            f"refusing to replace it. Choose an empty or new folder.")


def _execute(nb: Path, out_nb: Path, parameters: dict[str, Any], cwd: Path, kept_in: Path) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        declared = pm.inspect_notebook(str(nb))
    except Exception as exc:  # noqa: BLE001 - unreadable notebook or no kernel metadata
        raise NotebookError(f"notebook {nb.name} cannot be read: {exc}") from None
    given = {k: v for k, v in parameters.items() if k in declared}
    try:
        pm.execute_notebook(str(nb), str(out_nb), parameters=given, kernel_name=ensure_kernel(),
                            progress_bar=False, cwd=str(cwd),
                            kernel_manager_class="cxvalue.report.IPCKernelManager")
    except PapermillExecutionError as exc:
        first_line = (exc.source or "").strip().splitlines()[0][:80] if (exc.source or "").strip() else ""
        raise NotebookError(
            f"notebook {nb.name} failed in cell {exc.cell_index} of the executed copy "
            f"(starting `{first_line}`): {exc.ename}: {exc.evalue}. The partly executed notebook is kept in "
            f"{kept_in / 'notebooks' / out_nb.name}") from None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def run(source: Any, params: dict[str, Any], out_dir: str | Path | None = None,
        title: str = "What customer experience is worth", runs_dir: str | Path | None = None,
        pdf: bool = False, progress: Progress | None = None, workers: int | None = None) -> Path:
    """Check the data, execute every notebook, write ``DIR/`` atomically; return ``DIR``.

    With ``runs_dir`` the run is kept in ``runs_dir/<UTC time>/`` and the scorecard shows the
    trend over the earlier runs there; ``out_dir`` (optional then) gets a copy of it. With
    ``pdf`` the report is also printed to ``report.pdf`` by headless Chromium (which must be
    installed, e.g. Debian's ``chromium`` package). ``progress(step, seconds)`` hears of each
    step and notebook as it starts (seconds None) and ends (:mod:`cxvalue.progress`);
    ``workers`` notebooks run side by side once the analysis is done (default: the CPU count,
    at most 2; ``$CXVALUE_WORKERS`` overrides).

    Raises
    ------
    InputError : the data or parameters are invalid (exit 2); nothing is written.
    NotebookError : a notebook failed (exit 1); partial output in ``DIR.failed/``.
    """
    from cxvalue.runs import run_folder_name

    if out_dir is None and runs_dir is None:
        raise InputError("give an output folder (--out) or a runs folder (--runs-dir)")
    browser = _chromium() if pdf else None
    if pdf and browser is None:
        raise InputError("--pdf needs headless Chromium: install it (Debian: apt-get install chromium) or leave out --pdf")
    started = dt.datetime.now(dt.timezone.utc)
    copy_to = None
    if runs_dir is not None:
        copy_to = Path(out_dir).resolve() if out_dir is not None else None
        if copy_to is not None:
            _check_out_dir(copy_to)
        runs = Path(runs_dir).resolve()
        out = runs / run_folder_name(started)
        while out.exists():  # two runs in one second
            started += dt.timedelta(seconds=1)
            out = runs / run_folder_name(started)
    else:
        out = Path(out_dir).resolve()
    done = _run(source, params, out, title, started, runs_dir, browser, progress or quiet, workers)
    if copy_to is not None:
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{copy_to.name}.", dir=copy_to.parent))
        shutil.copytree(done, staging, dirs_exist_ok=True)
        staging.chmod(0o755)
        _swap(staging, copy_to)
        return copy_to
    return done


def check_ready(source: Any, params: dict[str, Any], progress: Progress | None = None, second_process: bool = False
                ) -> tuple[data.CheckedData, Any, Any]:
    """Check the data against the contract and that it can be analysed at all (exit 2 where not),
    before any notebook runs; return the checked data, the customer history (the placebo check's
    history is built in the same pass and kept on the checked data for it) and, with
    ``second_process``, a second process started on large data once it is checked
    (:func:`cxvalue.pipeline.warm_second_process`; None otherwise)."""
    from cxvalue.history import histories
    from cxvalue.pipeline import warm_second_process
    from cxvalue.progress import timed
    from cxvalue.readiness import require

    progress = progress or quiet
    checked = timed(progress, "checking the data", lambda: data.check(source, params))
    second = warm_second_process(checked) if second_process else None
    try:
        shift = int(params["window_months"])  # the placebo check's (cxvalue.placebo.shifted_history)
        hist = timed(progress, "customer history",
                     lambda: histories(checked, params, (0, shift), keep=(shift,))[0])
        require(checked, params, hist)
    except BaseException:
        if second is not None:
            second.shutdown()
        raise
    return checked, hist, second


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html_file: Path, pdf_file: Path, browser: str) -> None:
    """Print a report to PDF with headless Chromium, offline (no network, a throw-away profile)."""
    import subprocess

    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", "--virtual-time-budget=10000",
               f"--print-to-pdf={pdf_file}", html_file.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not pdf_file.is_file():
        raise NotebookError(f"printing the PDF failed: {done.stderr.strip()[-300:]}")


def _workers(workers: int | None) -> int:
    if workers is None:
        workers = int(os.environ.get("CXVALUE_WORKERS") or min(2, os.cpu_count() or 1))
    return max(1, workers)


def _execute_all(notebook_files: list[Path], staging: Path, nb_params: dict[str, Any], kept_in: Path,
                 progress: Progress, workers: int, meanwhile: Any = None) -> list[Path]:
    """Execute the notebooks, ``workers`` at a time, while this thread runs ``meanwhile()``
    (the rest of the analysis, which notebooks that need it wait for). The first error of
    ``meanwhile`` or else of a notebook (in run order) is raised once every started notebook
    has finished."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    def one(nb: Path) -> Path:
        target = staging / "notebooks" / nb.name
        progress(f"notebook {nb.name}", None)
        t0 = time.perf_counter()
        _execute(nb, target, nb_params, cwd=staging, kept_in=kept_in)
        progress(f"notebook {nb.name}", time.perf_counter() - t0)
        return target

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, nb) for nb in notebook_files]
        if meanwhile is not None:
            meanwhile()  # an error here leaves the pool's with-block only once the notebooks stopped
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err
    return [f.result() for f in futures]


def _run(source: Any, params: dict[str, Any], out: Path, title: str, started: dt.datetime,
         runs_dir: str | Path | None, browser: str | None = None, progress: Progress = quiet,
         workers: int | None = None) -> Path:
    from cxvalue import excel, pipeline, runs, store
    from cxvalue.html import notebooks_to_html
    from cxvalue.progress import timed

    _check_out_dir(out)
    # fail fast, before any notebook runs
    checked, hist, second = check_ready(source, params, progress, second_process=_workers(workers) > 1)
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except BaseException:
        if second is not None:
            second.shutdown()
        raise
    staging.chmod(0o755)
    try:
        (staging / "notebooks").mkdir()
        parts = staging / ".parts"
        nb_params = config.to_notebook(params)
        # notebooks run inside the staging folder: hand them an absolute path
        nb_params["data"] = str(Path(source).resolve()) if isinstance(source, (str, Path)) and Path(source).exists() \
            else "" if source is None else str(source)  # "": the source block names every table
        nb_params["results_dir"] = str(parts)
        nb_params["output_dir"] = ""  # the run writes the workbook itself, from the live business case
        nb_params["runs_dir"] = str(Path(runs_dir).resolve()) if runs_dir is not None else ""
        nb_params["analysis_dir"] = str(staging / ".analysis")

        # one analysis for the whole run, kept for the notebooks (cxvalue.store): the core (history,
        # linkage models, business case) first; the notebooks start on it while this process
        # computes the other analyses (single-threaded model fits leave a core free for them), and
        # a notebook that shows one of those waits until the whole analysis is stored
        earlier = runs.earlier_runs(nb_params["runs_dir"])
        # the parts that need only the data and the history start in a second process now, beside the core
        if second is not None:  # started once the data was checked (large data, more than one core)
            second = pipeline.start_second_process(checked, hist, params, progress, second)
        analysis = pipeline.analyse(source, params, checked=checked, hist=hist, earlier=earlier, progress=progress,
                                    second=second)
        hashes = timed(progress, "hashing the input files", checked.source.file_hashes)
        key = store.run_key(params, nb_params["data"], checked.source.files, hashes, earlier)
        folder = nb_params["analysis_dir"]
        timed(progress, "storing the core analysis",
              lambda: store.save(analysis, folder, key, complete=False))
        timed(progress, "business_case.xlsx", lambda: excel.write_workbook(analysis.case, staging))
        del hist

        def rest_of_the_analysis() -> None:
            try:  # each part stored as it is done: a notebook waits only for the parts it shows
                analysis.compute_all(second_process=_workers(workers) > 1,
                                     on_part=lambda name: store.save(analysis, folder, key, complete=False))
                timed(progress, "storing the analysis", lambda: store.save(analysis, folder, key))
            except BaseException as exc:
                store.mark_failed(folder, f"{type(exc).__name__}: {exc}")
                raise

        executed = _execute_all(run_order(notebooks()), staging, nb_params, out.with_name(out.name + ".failed"),
                                progress, _workers(workers), meanwhile=rest_of_the_analysis)
        executed.sort(key=lambda p: p.name)  # the report's order
        del analysis

        results = merge_parts(parts)
        results["data_quality"] = checked.data_quality
        shutil.rmtree(parts, ignore_errors=True)
        shutil.rmtree(staging / ".analysis", ignore_errors=True)
        (staging / "results.json").write_text(dumps(results))
        (staging / "report.html").write_text(notebooks_to_html(executed, title), encoding="utf-8")
        if browser is not None:
            print_pdf(staging / "report.html", staging / "report.pdf", browser)
        manifest = {
            "run_id": run_id,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cxvalue_version": metadata.version("cxvalue"),
            "source": checked.source.description,
            "as_of": checked.as_of.isoformat(),
            "parameters": params,
            # the values the business case actually used (e.g. the margin measured from the transactions)
            "used": results.get("business_case", {}).get("assumptions", {}),
            "analysis_key": key["key"],
            "inputs": {t: {"rows": q["rows_read"], "sha256": hashes.get(t)}
                       for t, q in checked.data_quality.items()},
            "notebooks": [p.name for p in executed],
            "packages": _versions(),
            "platform": platform.platform(),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    except BaseException:
        if second is not None:  # the fits not yet started are cancelled (a running one ends first)
            second.shutdown()
        failed = out.with_name(out.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        staging.rename(failed)
        raise
    _swap(staging, out)
    return out


def _swap(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` with two renames; the old folder goes only after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:6]}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(out.with_name(out.name + ".failed"), ignore_errors=True)
