"""Run parameters: defaults, YAML and ``--set`` overrides, validation.

Every parameter a run accepts is declared once in :data:`PARAMETERS` with its default,
type and meaning. :func:`load_params` merges a YAML file and ``key=value`` overrides
over the defaults and raises :class:`~cxvalue.exceptions.ParameterError` (exit 2) naming
the key for anything unknown, mistyped or impossible.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from cxvalue.exceptions import ParameterError

METRICS = ("nps", "csat", "ces")

#: Score bands per metric: label -> [lowest, highest] score (inclusive), in display order.
DEFAULT_BANDS: dict[str, dict[str, list[int]]] = {
    "nps": {"detractor": [0, 6], "passive": [7, 8], "promoter": [9, 10]},
    "csat": {"dissatisfied": [1, 2], "neutral": [3, 3], "satisfied": [4, 5]},
    "ces": {"high_effort": [1, 3], "neutral": [4, 4], "low_effort": [5, 7]},
}
DEFAULT_REFERENCE = {"nps": "passive", "csat": "neutral", "ces": "neutral"}
#: Valid score range per metric (CONTRACT section 1).
SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
#: Tables a ``source`` block can map (their columns are in :data:`cxvalue.data.TABLES`).
SOURCE_TABLES = ("customers", "responses", "transactions", "contacts", "maturity")
#: Keys of one table's entry in the ``source`` block: where the table is, then how to read it.
SOURCE_WHERE = ("file", "table", "query")
SOURCE_READ = ("delimiter", "decimal", "date_format")


@dataclass(frozen=True)
class Param:
    """One run parameter: dotted name, default, accepted type and a one-line meaning."""

    name: str
    default: Any
    kind: str  # "date?", "str", "int", "float", "map:float", "bands", "float?", "target?", "source"
    help: str
    choices: tuple = ()
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)


def _share(v):
    return None if 0 <= v <= 1 else "must be a share between 0 and 1"


def _positive(v):
    return None if v > 0 else "must be positive"


def _non_negative(v):
    return None if v >= 0 else "must be zero or more"


#: The keys of a goal with a date (``targets.nps: {value: 10, by: 2027-12-31}``).
GOAL_KEYS = ("value", "by", "from", "start")
_GOAL_HELP = (": a number, or a goal with a date, {value: V, by: YYYY-MM-DD}, optionally with from: YYYY-MM-DD "
              "(the day the path starts; default: a year before as_of) and start: the value on that day "
              "(default: measured from the data).")


def _goal_range(low: float | None, high: float | None) -> Callable[[Any], str | None]:
    """Check a goal's value (and start value) against the KPI's range."""
    def check(goal):
        for what, x in (("value", goal_value(goal)), ("start", goal.get("start") if isinstance(goal, dict) else None)):
            if x is not None and ((low is not None and x < low) or (high is not None and x > high)):
                where = f"between {low:g} and {high:g}" if high is not None else f"{low:g} or more"
                return f"the goal's {what} must be {where}"
        return None

    return check


def goal_value(goal: Any) -> float | None:
    """The number a KPI aims at: a plain goal itself, a goal with a date its ``value``."""
    return goal.get("value") if isinstance(goal, dict) else goal


def _goal(key: str, v: dict, p: Param) -> dict[str, Any]:
    """Check a goal with a date: ``{value, by}``, optionally ``from`` and ``start``."""
    example = f"e.g. {key}: {{value: 10, by: 2027-12-31}}"
    unknown = [k for k in v if k not in GOAL_KEYS]
    if unknown:
        raise ParameterError(f"parameter '{key}.{unknown[0]}': unknown key of a goal; expected value, by, and "
                             f"optionally from and start ({example}).")
    for needed in ("value", "by"):
        if v.get(needed) in (None, ""):
            raise ParameterError(f"parameter '{key}': a goal with a date needs '{needed}' ({example}; got {v!r}).")
    out: dict[str, Any] = {}
    for k in ("value", "start"):
        x = v.get(k)
        if x in (None, ""):
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ParameterError(f"parameter '{key}.{k}': expected a number (got {x!r}). {p.help}")
        out[k] = float(x)
    for k in ("by", "from"):
        x = v.get(k)
        if x in (None, ""):
            continue
        try:
            out[k] = _coerce(Param(f"{key}.{k}", None, "date", "A date, YYYY-MM-DD."), f"{key}.{k}", x)
        except ParameterError:
            raise ParameterError(f"parameter '{key}.{k}': expected a date YYYY-MM-DD (got {x!r}); {example}.") from None
    if "from" in out and out["from"] >= out["by"]:
        raise ParameterError(f"parameter '{key}': the path starts ({out['from']}) on or after the day the goal is due "
                             f"({out['by']}); 'from' must come before 'by'.")
    return out


PARAMETERS: list[Param] = [
    Param("as_of", None, "date?", "Date the data is 'as of'; histories are censored here (default: latest date in the data)."),
    Param("study_start", None, "date?", "First day an index response may fall on (default: earliest response)."),
    Param("study_end", None, "date?", "Last day an index response may fall on (default: as_of)."),
    Param("metric", "nps", "str", "Score that defines the satisfaction groups.", choices=METRICS),
    Param("index_response", "first", "str", "Which relationship response in the study window sets a customer's group.", choices=("first", "last")),
    Param("survey_type", "relationship", "str", "Responses that may be index responses: relationship surveys only, or any survey.", choices=("relationship", "any")),
    Param("bands", {}, "bands", "Score bands per metric, e.g. bands.nps.detractor=[0, 6] (default: CONTRACT section 2)."),
    Param("reference_group", "", "str", "Group every ratio is relative to (default: passive / neutral)."),
    Param("window_months", 12, "int", "Length of the pre- and post-response windows, months.", check=_positive),
    Param("horizon_years", 5, "int", "Business-case horizon, years.", check=_positive),
    Param("discount_rate", 0.08, "float", "Yearly discount rate for NPV and CLV (0.08 = 8%).", check=_non_negative),
    Param("gross_margin", 0.6, "float", "Gross margin as a share of revenue, used when transactions have no cost.", check=_share),
    Param("margin_source", "auto", "str", "Where the margin on revenue comes from: auto (transactions' own cost when "
          "they have a cost column, else gross_margin) or parameter (always gross_margin).", choices=("auto", "parameter")),
    Param("response_weights", "auto", "str", "How respondents stand for today's customers in the business case: auto "
          "(weighted by the inverse of their chance of answering given plan, size and tenure, when some customers did "
          "not answer) or none (each respondent counts once).", choices=("auto", "none")),
    Param("business_model", "auto", "str", "How customers leave: contractual (they cancel: customers have an end_date), "
          "non_contractual (they never cancel, they stop buying: retail, e-commerce) or auto (non_contractual when no "
          "customer has an end_date).", choices=("auto", "contractual", "non_contractual")),
    Param("contact_cost", {"phone": 12.0, "email": 6.0, "chat": 5.0, "web": 1.0, "store": 15.0, "other": 8.0}, "map:float",
          "Cost per contact by channel (currency), used when contacts have no cost column; 'other' covers unlisted channels."),
    Param("currency", "USD", "str", "Label of the data's currency in the report (amounts are not converted)."),
    Param("min_group_size", 100, "int", "Groups with fewer customers are reported but flagged as unreliable.", check=_positive),
    Param("min_cell_size", 10, "int", "Cells with fewer customers are suppressed in the report.", check=_positive),
    Param("seed", 42, "int", "Random seed for every simulation and resampling."),
    Param("scenario.detractor_to_passive", 0.2, "float", "Share of detractors (lowest group) moved to the reference group.", check=_share),
    Param("scenario.passive_to_promoter", 0.1, "float", "Share of the reference group moved to the highest group.", check=_share),
    Param("scenario.ramp_years", 2, "int", "Years until the shifts are fully achieved (linear ramp).", check=_positive),
    Param("scenario.lag_years", 0, "int", "Years between a customer's shift and its first benefit.", check=_non_negative),
    Param("scenario.draws", 10_000, "int", "Simulation draws for the NPV's uncertainty.", check=_positive),
    Param("scenario.one_off_cost", 250_000.0, "float", "One-off programme cost, currency.", check=_non_negative),
    Param("scenario.yearly_cost", 100_000.0, "float", "Yearly running cost of the programme, currency.", check=_non_negative),
    Param("scenario.target_score", None, "float?", "Net score to reach instead of fixed shares: % highest group - % lowest "
          "group, -100..100 (NPS for nps). The two shares are scaled, keeping their ratio, until today's base reaches it.",
          check=lambda v: None if v is None or -100 <= v <= 100 else "must be between -100 and 100"),
    Param("scenario.failure_demand_reasons", "", "names", "Contact reasons whose removal the scenario includes as a "
          "lever (failure_demand.share_removed of their contacts, following the ramp and lag): empty = none; top = the "
          "failure_demand.top_reasons costliest; or reasons separated by commas, e.g. billing_error,service_outage. "
          "Needs contacts with a reason."),
    Param("failure_demand.share_removed", 0.25, "float", "Share of each contact reason's contacts removed in the "
          "value of failure demand (0.25 = a quarter).", check=_share),
    Param("failure_demand.top_reasons", 5, "int", "How many of the costliest contact reasons are linked to churn "
          "and valued.", check=_positive),
    Param("targets.nps", None, "target?", "NPS goal, points -100..100" + _GOAL_HELP, check=_goal_range(-100, 100)),
    Param("targets.csat", None, "target?", "CSAT goal, share satisfied 0-1" + _GOAL_HELP, check=_goal_range(0, 1)),
    Param("targets.ces", None, "target?", "CES goal, share low effort 0-1" + _GOAL_HELP, check=_goal_range(0, 1)),
    Param("targets.retention_12m", None, "target?", "12-month retention goal, share 0-1" + _GOAL_HELP,
          check=_goal_range(0, 1)),
    Param("targets.repeat_purchase_12m", None, "target?", "Repeat-purchase rate goal (customers who never cancel: "
          "share of last year's buyers who bought again), share 0-1" + _GOAL_HELP, check=_goal_range(0, 1)),
    Param("targets.revenue_per_customer", None, "target?", "Revenue per customer per year goal, currency"
          + _GOAL_HELP, check=_goal_range(0, None)),
    Param("targets.cost_to_serve_per_customer", None, "target?", "Cost to serve per customer per year goal, currency"
          + _GOAL_HELP, check=_goal_range(0, None)),
    Param("source", {}, "source", "Your own files, tables and columns mapped onto the contract, per table: "
          "source.<table>.file (CSV/Parquet; relative to the parameter file) | .table | .query (SQL), "
          ".columns.<contract name> = your column, and for files .delimiter, .decimal (',' or '.'), "
          ".date_format (e.g. '%d/%m/%Y'). See docs/CONTRACT.md."),
]
#: Parameters that are mappings: their sub-keys may be set one by one (``contact_cost.phone=9``).
_MAPPINGS = ("map:float", "bands", "source")
_BY_NAME = {p.name: p for p in PARAMETERS}


def defaults() -> dict[str, Any]:
    """The default parameters as a nested dict (``scenario``, ``targets`` are sub-dicts)."""
    out: dict[str, Any] = {}
    for p in PARAMETERS:
        _set_dotted(out, p.name, copy.deepcopy(p.default))
    return out


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        d = d.setdefault(part, {})
        if not isinstance(d, dict):
            raise ParameterError(f"parameter '{key}': '{part}' is not a group of parameters")
    d[parts[-1]] = value


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if name in _BY_NAME or not isinstance(v, dict):
            out[name] = v
        else:
            out.update(_flatten(v, name + "."))
    return out


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings (values read as YAML scalars/lists) into a flat dict."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ParameterError(f"--set '{item}': expected key=value, e.g. --set discount_rate=0.1")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ParameterError(f"--set {key}: cannot read value {raw!r}: {exc}") from None
        out[key.strip()] = value
    return out


def _coerce(p: Param, key: str, v: Any, base: Path | None = None) -> Any:
    def bad(what: str):
        return ParameterError(f"parameter '{key}': {what} (got {v!r}). {p.help}")

    kind = p.kind
    if kind.endswith("?"):
        if v is None or v == "":
            return None
        kind = kind[:-1]
    if kind == "date":
        if isinstance(v, dt.datetime):
            return v.date().isoformat()
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v.strip()[:10]).isoformat()
            except ValueError:
                pass
        raise bad("expected a date YYYY-MM-DD")
    if kind == "names":  # text, or a list of names kept as one comma-separated text (papermill passes text)
        if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            return ",".join(x.strip() for x in v)
        if not isinstance(v, str):
            raise bad("expected names separated by commas, or a list of names")
        return ",".join(x.strip() for x in v.split(",") if x.strip())
    if kind == "str":
        if not isinstance(v, str):
            raise bad("expected text")
        if p.choices and v not in p.choices:
            raise bad(f"expected one of {', '.join(p.choices)}")
        return v
    if kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad("expected a whole number")
        return v
    if kind == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("expected a number")
        return float(v)
    if kind == "target":
        if isinstance(v, dict):
            return _goal(key, v, p)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("expected a number, or a goal with a date like {value: 10, by: 2027-12-31}")
        return float(v)
    if kind == "map:float":
        if not isinstance(v, dict):
            raise bad("expected a mapping of name -> number")
        out = {}
        for k2, v2 in v.items():
            if isinstance(v2, bool) or not isinstance(v2, (int, float)) or v2 < 0:
                raise ParameterError(f"parameter '{key}.{k2}': expected a number >= 0 (got {v2!r})")
            out[str(k2)] = float(v2)
        return out
    if kind == "bands":
        if not isinstance(v, dict):
            raise bad("expected metric -> {label: [low, high]}")
        out = {}
        for metric, bands in v.items():
            if metric not in METRICS:
                raise ParameterError(f"parameter '{key}.{metric}': unknown metric; expected one of {', '.join(METRICS)}")
            if isinstance(bands, dict) and set(bands) < set(DEFAULT_BANDS[metric]):
                bands = {**DEFAULT_BANDS[metric], **bands}  # one default band changed: keep the others
            _check_bands(f"{key}.{metric}", metric, bands)
            out[metric] = bands
        return out
    if kind == "source":
        if not isinstance(v, dict):
            raise bad("expected table -> {file | table | query, columns, ...}")
        out = {}
        for table, spec in v.items():
            checked = _source_table(f"{key}.{table}", table, spec, base)
            if checked:  # an empty entry: names as in the contract
                out[table] = checked
        return out
    raise AssertionError(kind)


def _source_table(key: str, table: Any, spec: Any, base: Path | None) -> dict[str, Any]:
    """Check one table's entry of the ``source`` block; a relative ``file`` becomes absolute (from ``base``)."""
    if table not in SOURCE_TABLES:
        raise ParameterError(f"parameter '{key}': unknown table; expected one of {', '.join(SOURCE_TABLES)}")
    if not isinstance(spec, dict):
        raise ParameterError(f"parameter '{key}': expected a mapping like {{file: orders.csv, columns: "
                             f"{{customer_id: CustID}}}} (got {spec!r})")
    for k, v in spec.items():
        if k not in (*SOURCE_WHERE, "columns", *SOURCE_READ):
            raise ParameterError(f"parameter '{key}.{k}': unknown key; expected one of "
                                 f"{', '.join((*SOURCE_WHERE, 'columns', *SOURCE_READ))}")
        if k != "columns" and (not isinstance(v, str) or not (v if k == "delimiter" else v.strip())):  # tab is text
            raise ParameterError(f"parameter '{key}.{k}': expected text (got {v!r})")
    where = [k for k in SOURCE_WHERE if k in spec]
    if len(where) > 1:
        raise ParameterError(f"parameter '{key}': give one of file, table or query, not {' and '.join(where)}")
    out = dict(spec)
    if "query" in spec and any(k in spec for k in SOURCE_READ):
        k = next(k for k in SOURCE_READ if k in spec)
        raise ParameterError(f"parameter '{key}.{k}': applies to files; a query converts its own values (CAST, strptime)")
    if "delimiter" in spec and len(spec["delimiter"]) != 1:
        raise ParameterError(f"parameter '{key}.delimiter': expected one character such as ';', '|' or "
                             f"\"\\t\" (tab) (got {spec['delimiter']!r})")
    if "decimal" in spec and spec["decimal"] not in (",", "."):
        raise ParameterError(f"parameter '{key}.decimal': expected ',' or '.' (got {spec['decimal']!r})")
    if "date_format" in spec and "%" not in spec["date_format"]:
        raise ParameterError(f"parameter '{key}.date_format': expected a strftime format like '%d/%m/%Y' "
                             f"(got {spec['date_format']!r})")
    if "columns" in spec:
        cols = spec["columns"]
        if not isinstance(cols, dict):
            raise ParameterError(f"parameter '{key}.columns': expected contract name -> your column, like "
                                 f"{{customer_id: CustID}} (got {cols!r})")
        seen: dict[str, str] = {}
        for name, col in cols.items():
            if not isinstance(col, str) or not col.strip():
                raise ParameterError(f"parameter '{key}.columns.{name}': expected the name of your column (got {col!r})")
            if col.strip().lower() in seen:
                raise ParameterError(f"parameter '{key}.columns': column '{col}' is mapped twice "
                                     f"({seen[col.strip().lower()]} and {name})")
            seen[col.strip().lower()] = str(name)
        out["columns"] = {str(name).strip().lower(): col for name, col in cols.items()}
    if "file" in spec:
        path = Path(spec["file"]).expanduser()
        path = (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()
        if not path.is_file():
            raise ParameterError(f"parameter '{key}.file': no such file {path}"
                                 + (f" (relative paths start from the parameter file's folder, {base})" if base else ""))
        out["file"] = str(path)
    return out


def _check_bands(key: str, metric: str, bands: Any) -> None:
    lo_ok, hi_ok = SCORE_RANGES[metric]
    if not isinstance(bands, dict) or len(bands) < 2:
        raise ParameterError(f"parameter '{key}': expected at least two groups as label: [low, high]")
    covered: list[int] = []
    for label, rng in bands.items():
        if (not isinstance(rng, (list, tuple)) or len(rng) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in rng) or rng[0] > rng[1]):
            raise ParameterError(f"parameter '{key}.{label}': expected [low, high] whole scores, got {rng!r}")
        covered += list(range(rng[0], rng[1] + 1))
    expected = list(range(lo_ok, hi_ok + 1))
    if sorted(covered) != expected:
        raise ParameterError(f"parameter '{key}': bands must cover each score {lo_ok}-{hi_ok} exactly once")


def validate(flat: dict[str, Any], base: Path | None = None) -> dict[str, Any]:
    """Check a flat ``{dotted_key: value}`` dict and return it coerced; raise on problems.

    ``base`` is the folder relative paths (``source.<table>.file``) start from: the parameter
    file's folder, else the working directory.
    """
    out = {}
    for key, v in flat.items():
        p = _BY_NAME.get(key)
        if p is None:
            # sub-keys of a mapping parameter, e.g. contact_cost.phone or bands.nps.detractor
            head = next((n for n in _BY_NAME if key.startswith(n + ".")), None)
            if head and _BY_NAME[head].kind in _MAPPINGS:
                out.setdefault(head, {})
                _set_dotted(out[head], key[len(head) + 1:], v)
                continue
            close = [n for n in _BY_NAME if n.split(".")[-1] == key.split(".")[-1]]
            hint = f" Did you mean '{close[0]}'?" if close else " Run `cxvalue params` to list them."
            raise ParameterError(f"unknown parameter '{key}'.{hint}")
        out[key] = v
    checked = {}
    for k, v in out.items():
        p = _BY_NAME[k]
        value = _coerce(p, k, v, base)
        problem = p.check(value) if (p.check and value is not None) else None
        if problem:
            raise ParameterError(f"parameter '{k}': {problem} (got {v!r}). {p.help}")
        checked[k] = value
    return checked


def load_params(config_file: str | Path | dict | None = None,
                overrides: dict[str, Any] | list[str] | None = None) -> dict[str, Any]:
    """Defaults, then a YAML file, then overrides; validated; returned nested.

    Parameters
    ----------
    config_file : path to a YAML mapping of parameters (nested or dotted keys), or directly a
        mapping of overrides.
    overrides : ``{"scenario.detractor_to_passive": 0.3}`` or a list of ``key=value`` strings.
    """
    if isinstance(config_file, dict):  # load_params({"as_of": ...}): a mapping means overrides
        config_file, overrides = None, {**config_file, **(overrides or {})} if not isinstance(overrides, list) \
            else {**config_file, **parse_set(overrides)}
    flat = _flatten(defaults())
    layers: list[tuple[dict[str, Any], Path | None]] = []
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ParameterError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ParameterError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ParameterError(f"config file {path} must hold a mapping of parameter: value")
        layers.append((_flatten(data), path.resolve().parent))
    if isinstance(overrides, list):
        overrides = parse_set(overrides)
    if overrides:
        layers.append((_flatten(overrides) if any(isinstance(v, dict) for v in overrides.values()) else dict(overrides),
                       None))
    for layer, base in layers:
        checked = validate(layer, base)
        for k, v in checked.items():
            if _BY_NAME[k].kind == "source":
                flat[k] = _merge_source(flat.get(k) or {}, v)
            elif _BY_NAME[k].kind in _MAPPINGS and isinstance(flat.get(k), dict):
                merged = dict(flat[k])
                merged.update(v)
                flat[k] = merged
            else:
                flat[k] = v
    flat = validate(flat)
    nested: dict[str, Any] = {}
    for k, v in flat.items():
        _set_dotted(nested, k, v)
    _check_cross(nested)
    return nested


def _merge_source(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A later ``source`` layer changes single keys of a table's entry; a new file, table or
    query replaces the old one; ``columns`` merge."""
    out = {t: dict(spec) for t, spec in old.items()}
    for table, spec in new.items():
        entry = out.setdefault(table, {})
        if any(k in spec for k in SOURCE_WHERE):
            for k in SOURCE_WHERE:
                entry.pop(k, None)
        entry.update({k: v for k, v in spec.items() if k != "columns"})
        if "columns" in spec:
            entry["columns"] = {**entry.get("columns", {}), **spec["columns"]}
    return out


def _check_cross(params: dict[str, Any]) -> None:
    metric = params["metric"]
    ref = params["reference_group"] or DEFAULT_REFERENCE[metric]
    labels = list(bands_for(params))
    if ref not in labels:
        raise ParameterError(
            f"parameter 'reference_group': '{ref}' is not a group of metric {metric} (groups: {', '.join(labels)})")
    s, e = params.get("study_start"), params.get("study_end")
    if s and e and s > e:
        raise ParameterError(f"parameters 'study_start' ({s}) is after 'study_end' ({e})")


def bands_for(params: dict[str, Any]) -> dict[str, list[int]]:
    """Score bands of the chosen metric: label -> [low, high], lowest band first."""
    metric = params["metric"]
    bands = params.get("bands", {}).get(metric) or DEFAULT_BANDS[metric]
    return dict(sorted(bands.items(), key=lambda kv: kv[1][0]))


def reference_group(params: dict[str, Any]) -> str:
    return params["reference_group"] or DEFAULT_REFERENCE[params["metric"]]


def describe() -> str:
    """Every parameter with its default and meaning, for ``cxvalue params``."""
    lines = []
    for p in PARAMETERS:
        default = "(none)" if p.default in (None, "", {}) else p.default
        choice = f" [{' | '.join(p.choices)}]" if p.choices else ""
        lines.append(f"{p.name} = {default}{choice}\n    {p.help}")
    return "\n".join(lines)


def notebook_name(key: str) -> str:
    """Papermill parameter name of a dotted key: ``scenario.one_off_cost`` -> ``scenario__one_off_cost``."""
    return key.replace(".", "__")


def to_notebook(params: dict[str, Any]) -> dict[str, Any]:
    """Validated nested parameters -> flat papermill parameters (see :func:`notebook_name`)."""
    flat = {}
    for p in PARAMETERS:
        d: Any = params
        for part in p.name.split("."):
            d = d[part]
        flat[notebook_name(p.name)] = d
    return flat


def from_notebook(namespace: dict[str, Any]) -> dict[str, Any]:
    """Collect the parameters a notebook declared (its ``parameters`` cell) and validate them.

    Parameters not declared in the notebook keep their defaults. Empty strings mean "not set"
    for optional dates and targets.
    """
    found = {}
    for p in PARAMETERS:
        name = notebook_name(p.name)
        if name in namespace:
            value = namespace[name]
            if p.kind == "bands" and not value:
                continue
            found[p.name] = value
    return load_params(overrides=found)
