"""One analysis per run: what the notebooks show, kept on disk for them.

``cxvalue run`` computes the :class:`~cxvalue.pipeline.Analysis` once, then :func:`save` writes
what the report shows into the run's staging folder: every frame as Parquet, every fitted
summary, figure and ``results()`` block as JSON (dates, tuples and keys that are not text
tagged so that they come back as they were), and the key of the inputs and parameters it was
computed from. No live object is pickled: a model's statsmodels results, the Ibis tables and
the database connection stay in the run's process.

The notebooks call :func:`cxvalue.pipeline.load_or_analyse`: with the run's folder and the
same parameters, data and earlier runs it returns a :class:`StoredAnalysis` read from disk
(each frame on first use); otherwise (a notebook run on its own with papermill) it computes.
Both answer the same attributes; a stored part is a :class:`Record` holding the attributes the
report reads and the results of its ``results()`` (and ``trend()``) as computed in the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["save", "load", "Record", "StoredAnalysis", "run_key", "KEY_FILE"]

KEY_FILE = "key.json"
STATE_FILE = "analysis.json"
FAILED_FILE = "failed.txt"
FORMAT = 1
#: How long a notebook waits for the run to finish the analysis (seconds).
WAIT_S = 6 * 3600

#: What is kept of each part of the analysis: attributes (frames go to Parquet, the rest to
#: JSON) and the methods whose answers are kept (``results`` for every part that has one).
PARTS: dict[str, tuple[list[str], list[str]]] = {
    "checked": (["as_of", "data_quality", "covariates", "metrics", "attributes", "tables", "description"], []),
    "revenue": (["summary", "warnings_", "skipped_", "fitted", "e_value_conversion_", "method_", "what"], ["results"]),
    "cost_to_serve": (["summary", "warnings_", "skipped_", "fitted", "e_value_conversion_", "method_", "what"],
                      ["results"]),
    "churn": (["summary", "warnings_", "skipped_", "fitted", "e_value_conversion_", "ph_test_",
               "churn_by_end_of_follow_up_"], ["results"]),
    "referrals": (["summary"], ["results"]),
    "case": (["clv", "cash_flows", "npv", "roi", "payback_months", "irr", "uncertainty", "npv_draws", "moved",
              "sensitivity", "context", "left_out", "inputs_shown"], ["results", "assumptions"]),
    "scorecard": (["kpis_", "period_", "warnings_", "summary", "business_model"], ["results", "trend"]),
    "goal_paths": (["goals_", "as_of_", "skipped_", "warnings_", "summary"], ["results", "trend"]),
    "maturity": (["summary", "units_", "unit_kind_", "unit_title", "overall_", "skipped_", "warnings_"],
                 ["results", "trend", "since_last_run"]),
    "key_drivers": (["summary", "skipped_", "warnings_", "r2_", "n_responses_"], []),
    "journeys": (["summary", "skipped_", "warnings_", "n_customers_"], ["results"]),
    "closing_the_loop": (["summary", "skipped_", "warnings_"], ["results"]),
    "failure_demand": (["summary", "top_", "share_removed", "churn_skipped_", "mean_margin_", "skipped_", "warnings_"],
                       ["results", "ranked"]),
    "placebo": (["summary", "skipped_", "warnings_", "shift_months", "tolerance", "passed"], ["results"]),
    "transitions": (["summary", "skipped_", "warnings_", "groups"], ["results"]),
    "who_answered": (["summary", "skipped_", "warnings_", "group_values_"], ["results"]),
    "purchases": (["summary", "warnings_", "skipped_", "fitted"], ["results"]),
}
#: Frames and figures of the analysis itself.
FRAMES = ["history", "curves", "base", "response_weights", "observed", "value_per_year", "value_per_point",
          "headline_trend", "referred"]
VALUES = ["params", "reference", "margin_source", "earlier", "value_at_stake", "customers", "business_model",
          "business_model_reason"]
#: What the core save holds (parts, frames): what the linkage models, who answered (the response
#: weights) and the business case give.
CORE = {"checked", "revenue", "cost_to_serve", "churn", "referrals", "who_answered", "case", "purchases",
        "history", "curves", "base", "response_weights", "observed", "value_per_year", "headline_trend"}


def waits_for_the_rest(name: str) -> bool:
    """Whether reading ``name`` of a stored analysis that holds only the core may wait: a part or
    frame outside :data:`CORE` (until a later save stores it). ``skipped()`` and ``warnings()`` are
    the core's (the linkage models' and the business case's) and never wait."""
    return (name in FRAMES or name in PARTS) and name not in CORE


def stored_order() -> list[str]:
    """The parts and frames outside :data:`CORE` in the order ``cxvalue run`` stores them: the parts
    it computes itself (:data:`cxvalue.pipeline.PARTS` order), then those fitted in its second
    process (:data:`cxvalue.pipeline.ELSEWHERE`), then the frames computed from them."""
    from cxvalue.pipeline import ELSEWHERE
    from cxvalue.pipeline import PARTS as ANALYSIS_PARTS

    here = [p for p in ANALYSIS_PARTS if p not in ELSEWHERE]
    return [*here, *ELSEWHERE, *[f for f in FRAMES if f not in CORE and f not in ANALYSIS_PARTS]]


#: What the business case's ``inputs`` the report reads (the Excel workbook, which needs them
#: all, is written by the run from the live case).
CASE_INPUTS = ("target_score", "referral_value", "margin_source", "response_weights", "failure_demand")


# --------------------------------------------------------------------------- JSON with types


def encode(obj: Any) -> Any:
    """A JSON-ready copy that :func:`decode` turns back into an equal object (NaN kept, dates,
    tuples and non-text keys tagged, numpy scalars and arrays to Python)."""
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: encode(v) for k, v in obj.items()}
        return {"__items__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": [encode(v) for v in obj.tolist()], "dtype": str(obj.dtype)}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(obj, pd.Timestamp):
        return {"__timestamp__": obj.isoformat()}
    if isinstance(obj, dt.datetime):
        return {"__datetime__": obj.isoformat()}
    if isinstance(obj, dt.date):
        return {"__date__": obj.isoformat()}
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON")


def decode(obj: Any) -> Any:
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, v), = obj.items()
        if tag == "__items__":
            return {decode(k): decode(x) for k, x in v}
        if tag == "__tuple__":
            return tuple(decode(x) for x in v)
        if tag == "__float__":
            return float(v)
        if tag == "__timestamp__":
            return pd.Timestamp(v)
        if tag == "__datetime__":
            return dt.datetime.fromisoformat(v)
        if tag == "__date__":
            return dt.date.fromisoformat(v)
    if set(obj) == {"__array__", "dtype"}:
        return np.asarray(decode(obj["__array__"]), dtype=obj["dtype"])
    return {k: decode(v) for k, v in obj.items()}


# --------------------------------------------------------------------------- frames


def _write_frame(value: pd.DataFrame | pd.Series | np.ndarray, path: Path) -> dict[str, Any]:
    if isinstance(value, np.ndarray):
        pd.DataFrame({"value": value.ravel()}).to_parquet(path)
        return {"file": path.name, "kind": "array", "shape": list(value.shape)}
    if isinstance(value, pd.Series):
        frame = value.to_frame("value")
        frame.attrs = dict(value.attrs)
        frame.to_parquet(path)
        return {"file": path.name, "kind": "series", "name": encode(value.name)}
    value.to_parquet(path)
    return {"file": path.name, "kind": "frame"}


def _read_frame(folder: Path, meta: dict[str, Any]) -> Any:
    frame = pd.read_parquet(folder / meta["file"])
    if meta["kind"] == "array":
        return frame["value"].to_numpy().reshape(meta["shape"])
    if meta["kind"] == "series":
        out = frame["value"].rename(decode(meta["name"]))
        out.attrs = dict(frame.attrs)
        return out
    return frame


def _is_frame(value: Any) -> bool:
    return isinstance(value, (pd.DataFrame, pd.Series, np.ndarray))


class _Lazy:
    """A frame on disk, read on first use."""

    def __init__(self, folder: Path, meta: dict[str, Any]):
        self.folder, self.meta = folder, meta


# --------------------------------------------------------------------------- records


class Record:
    """A stored part of the analysis: the attributes the report reads, and the answers of its
    ``results()`` (and ``trend()``, ``ranked()``, ...: :data:`PARTS`) as the run computed them."""

    def __init__(self, kind: str, state: dict[str, Any], calls: dict[str, Any]):
        self._kind, self._state, self._calls = kind, state, calls

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__.get("_state", {})
        if name not in state and name in self.__dict__.get("_calls", {}):
            return lambda *args, **kwargs: self._call(name)  # e.g. ranked(): the answer the run computed
        if name not in state:
            raise AttributeError(f"the stored {self.__dict__.get('_kind')} has no {name!r}")
        value = state[name]
        if isinstance(value, _Lazy):
            value = state[name] = _read_frame(value.folder, value.meta)
        return value

    def _call(self, name: str) -> Any:
        value = self._calls[name]
        if isinstance(value, _Lazy):
            value = self._calls[name] = _read_frame(value.folder, value.meta)
        return value

    def results(self, *args: Any, **kwargs: Any) -> Any:
        """The part's ``results()`` as computed in the run (arguments, if any, were the analysis's own)."""
        return self._call("results")

    def trend(self) -> pd.DataFrame:
        return self._call("trend")

    def assumptions(self) -> dict[str, Any]:
        return self._call("assumptions")

    @property
    def inputs(self) -> dict[str, Any]:
        return self.inputs_shown

    def _repr_html_(self) -> str:
        from cxvalue.display import record_html

        return record_html(self)

    def __repr__(self) -> str:
        return f"<stored {self._kind}>"


def _state_of(kind: str, obj: Any) -> dict[str, Any]:
    attrs, _ = PARTS[kind]
    if kind == "checked":
        return {"as_of": obj.as_of, "data_quality": obj.data_quality, "covariates": dict(obj.covariates),
                "metrics": list(obj.metrics), "attributes": list(obj.attributes),
                "tables": list(obj.tables), "description": obj.source.description}
    if kind == "case":
        out = {a: getattr(obj, a) for a in attrs if a != "inputs_shown"}
        out["inputs_shown"] = {k: obj.inputs[k] for k in CASE_INPUTS if k in (obj.inputs or {})}
        return out
    return {a: getattr(obj, a) for a in attrs if hasattr(obj, a)}


def save(analysis: Any, folder: str | Path, key: dict[str, Any], complete: bool = True) -> Path:
    """Write ``analysis`` and ``key`` to ``folder``: every part (computing what is not yet
    computed), or with ``complete=False`` the core (:data:`CORE`: the history, the linkage
    models and the business case) and whichever other parts are computed already, so that
    notebooks can start while the rest is computed (one that reads a part not stored yet waits
    for it). A later ``save`` with the same key adds to it, re-using what was written; the state
    file is replaced in one rename, so a reader sees one save or the next, never half of one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if complete:
        analysis.compute_all()
    computed = analysis.__dict__  # the cached parts computed so far (and the dataclass's fields)

    def ready(name: str) -> bool:
        return complete or name in CORE or name in computed

    doc: dict[str, Any] = {"format": FORMAT, "complete": complete, "values": {}, "frames": {}, "parts": {}}
    written: dict[str, Any] = {"frames": {}, "parts": {}}  # what an earlier save of this analysis wrote already
    if (folder / STATE_FILE).is_file():
        earlier = json.loads((folder / STATE_FILE).read_text())
        if not earlier.get("complete") and json.loads((folder / KEY_FILE).read_text()).get("key") == key.get("key"):
            written = earlier

    def put(name: str, value: Any) -> Any:
        if _is_frame(value):
            return {"__frame__": _write_frame(value, folder / f"{name}.parquet")}
        return encode(value)

    for name in VALUES:
        doc["values"][name] = encode(getattr(analysis, name))
    for name in FRAMES:
        if name in written["frames"]:
            doc["frames"][name] = written["frames"][name]
        elif not ready(name):
            continue
        elif getattr(analysis, name) is None:  # response_weights without weighting
            doc["values"][name] = None
        else:
            doc["frames"][name] = _write_frame(getattr(analysis, name), folder / f"{name}.parquet")
    # the core's: the linkage models' and the business case's (Analysis.skipped, Analysis.warnings)
    doc["values"]["skipped"] = encode(analysis.skipped())
    doc["values"]["warnings"] = encode(analysis.warnings())
    doc["values"]["cost_to_serve_per_customer_year"] = analysis.cost_to_serve_per_customer_year()
    for kind, (_, calls) in PARTS.items():
        if kind in written["parts"]:
            doc["parts"][kind] = written["parts"][kind]
            continue
        if not ready(kind):
            continue
        obj = analysis.checked if kind == "checked" else getattr(analysis, kind)
        if obj is None:
            doc["parts"][kind] = None
            continue
        state = {a: put(f"{kind}.{a}", v) for a, v in _state_of(kind, obj).items()}
        answers = {c: put(f"{kind}.{c}()", getattr(obj, c)()) for c in calls}
        if kind == "key_drivers":  # its results price a rating point at the business case's values
            answers["results"] = encode(obj.results(analysis.value_per_year, analysis.customers))
        doc["parts"][kind] = {"state": state, "calls": answers}
    (folder / KEY_FILE).write_text(json.dumps(key, indent=1, sort_keys=True))
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, allow_nan=False))
    tmp.replace(folder / STATE_FILE)
    return folder


def mark_failed(folder: str | Path, why: str) -> None:
    """Tell notebooks waiting for the rest of the analysis that it will not come."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / FAILED_FILE).write_text(why)


def _names(doc: dict[str, Any]) -> set[str]:
    """What a saved state holds: its frames, parts and values (a frame that is None is a value)."""
    return {*doc["frames"], *doc["parts"], *doc["values"]}


def _unpack(folder: Path, value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__frame__"}:
        return _Lazy(folder, value["__frame__"])
    return decode(value)


class StoredAnalysis:
    """An :class:`~cxvalue.pipeline.Analysis` read back from :func:`save`'s folder: the same
    attributes, each part a :class:`Record`, each frame read from Parquet on first use."""

    def __init__(self, folder: Path, doc: dict[str, Any], key: dict[str, Any]):
        self._folder, self.key = folder, key
        self._read(doc)

    def _read(self, doc: dict[str, Any]) -> None:
        folder = self._folder
        self._complete = doc.get("complete", True)
        self._names = _names(doc)
        self._values = {k: decode(v) for k, v in doc["values"].items()}
        loaded = {k: v for k, v in getattr(self, "_frames", {}).items() if not isinstance(v, _Lazy)}
        self._frames = {k: loaded.get(k, _Lazy(folder, m)) for k, m in doc["frames"].items()}
        self._parts = {}
        for kind, part in doc["parts"].items():
            self._parts[kind] = None if part is None else Record(
                kind, {a: _unpack(folder, v) for a, v in part["state"].items()},
                {c: _unpack(folder, v) for c, v in part["calls"].items()})

    def _wait(self, name: str) -> None:
        """Wait until the run has stored ``name`` (it computes the rest of the analysis while
        notebooks start, and stores each part as it is done)."""
        import time

        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            failed = self._folder / FAILED_FILE
            if failed.is_file():
                raise RuntimeError(f"the run's analysis failed: {failed.read_text()}")
            doc = json.loads((self._folder / STATE_FILE).read_text())
            if doc.get("complete") or name in _names(doc):
                self._read(doc)
                return
            time.sleep(0.2)
        raise TimeoutError(f"the run did not store {name!r} of its analysis in {self._folder} within {WAIT_S} s")

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if not d.get("_complete", True) and waits_for_the_rest(name) and name not in d.get("_names", ()):
            self._wait(name)
        if name in d.get("_values", {}) and name not in ("skipped", "warnings", "cost_to_serve_per_customer_year"):
            return d["_values"][name]
        if name in d.get("_frames", {}):
            value = d["_frames"][name]
            if isinstance(value, _Lazy):
                value = d["_frames"][name] = _read_frame(value.folder, value.meta)
            return value
        if name in d.get("_parts", {}):
            return d["_parts"][name]
        raise AttributeError(f"the stored analysis has no {name!r}")

    def skipped(self) -> dict[str, str]:
        return self._values["skipped"]

    def warnings(self) -> list[str]:
        return self._values["warnings"]

    def cost_to_serve_per_customer_year(self) -> float:
        return self._values["cost_to_serve_per_customer_year"]

    def _repr_html_(self) -> str:
        from cxvalue.display import analysis_html

        return analysis_html(self)


# --------------------------------------------------------------------------- the key


def _canonical(obj: Any) -> str:
    return json.dumps(encode(obj), sort_keys=True, separators=(",", ":"))


def _file_stamps(files: dict[str, Any]) -> dict[str, list]:
    out = {}
    for name, path in sorted(files.items()):
        st = Path(path).stat()
        out[name] = [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
    return out


def run_key(params: dict[str, Any], data: str, files: dict[str, Any], file_hashes: dict[str, str],
            earlier: list[dict]) -> dict[str, Any]:
    """What an analysis was computed from: the parameters, the data source as the notebooks
    are handed it, each input file (content hash, and size and modification time for a cheap
    check), the earlier runs of the trend and cxvalue's version; ``key`` hashes them all."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        code = version("cxvalue")
    except PackageNotFoundError:  # pragma: no cover
        code = "unknown"
    out = {"params": json.loads(_canonical(params)), "data": data, "files": _file_stamps(files),
           "file_hashes": dict(sorted(file_hashes.items())),
           "earlier": [(r.get("run") or {}).get("label", "") for r in earlier], "cxvalue": code, "format": FORMAT}
    out["key"] = hashlib.sha256(_canonical(out).encode()).hexdigest()
    return out


def _at(params: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        params = params.get(part) if isinstance(params, dict) else None
    return params


def load(folder: str | Path, params: dict[str, Any], data: str, earlier: list[dict] | None,
         declared: list[str] | None = None) -> StoredAnalysis | None:
    """The stored analysis in ``folder`` if it was computed from these parameters (``declared``:
    only these dotted names are compared, as a notebook knows only the ones it declares), this
    data (files unchanged since) and these earlier runs (``None``: not compared, for a caller
    that does not know them); None otherwise."""
    folder = Path(folder)
    try:
        key = json.loads((folder / KEY_FILE).read_text())
        doc = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if doc.get("format") != FORMAT or key.get("format") != FORMAT:
        return None
    mine = json.loads(_canonical(params))
    if declared is None:
        same = key["params"] == mine
    else:
        same = all(_at(key["params"], name) == _at(mine, name) for name in declared)
    if not same or key["data"] != data:
        return None
    if earlier is not None and key["earlier"] != [(r.get("run") or {}).get("label", "") for r in earlier]:
        return None
    try:
        if _file_stamps({k: v[0] for k, v in key["files"].items()}) != key["files"]:
            return None
    except OSError:
        return None
    return StoredAnalysis(folder, doc, key)
