"""The whole chain in one call: check -> history -> linkage -> business case -> the other analyses.

:func:`analyse` checks the source, builds the history, fits the linkage models, weights the
respondents to today's customers (who answered) and prices the scenario; the analyses built
on those (the scorecard, goals with a date, CX maturity, key drivers, journeys vs touchpoints,
closing the loop, failure demand, movement between groups, referrals) are attributes of the
returned :class:`Analysis`, each computed the first time it is read. ``cxvalue run``
computes every part once (:meth:`Analysis.compute_all`) and stores it for the notebooks
(:mod:`cxvalue.store`); a notebook run on its own computes only the parts it shows. Every step
is a documented function or class of its module; this one only strings them together with the
run parameters, so a number in the report traces to one attribute here and one function there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from cxvalue import config
from cxvalue.progress import Progress, quiet, timed

if TYPE_CHECKING:  # the modules themselves are imported where used: a notebook that loads the
    # run's stored analysis (cxvalue.store) then never pays for statsmodels, scipy, Ibis and DuckDB
    from cxvalue import business_case, linkage
    from cxvalue import data as cxdata

__all__ = ["Analysis", "analyse", "failure_demand_lever", "load_or_analyse", "for_notebook", "NO_CONTACTS", "PARTS"]

NO_CONTACTS = ("Cost to serve: the data has no contacts table, so what each group costs to serve cannot be "
               "measured and the case has no cost-to-serve lever. Add contacts.csv (customer_id, date, channel; "
               "cost if known) to include it.")

#: The parts computed after the business case, in the order ``cxvalue run`` computes them:
#: attribute of :class:`Analysis` -> what the progress line calls it.
PARTS = {
    "scorecard": "scorecard",
    "goal_paths": "goals with a date",
    "maturity": "CX maturity",
    "key_drivers": "key drivers",
    "journeys": "journeys vs touchpoints",
    "closing_the_loop": "closing the loop",
    "failure_demand": "failure demand",
    "placebo": "placebo check",
    "transitions": "movement between groups",
    "referred": "referrals",
}
#: The parts ``cxvalue run`` fits in a second process (:meth:`Analysis.compute_all`), in this order. Their
#: inputs need only the checked data and the history (closing the loop and failure demand are priced once
#: the core gives the cost to serve and the margins: :meth:`cxvalue.closing_the_loop.ClosingTheLoop.price`,
#: :meth:`cxvalue.failure_demand.FailureDemand.price`), so ``cxvalue run`` hands them over before it fits
#: the core (:func:`start_second_process`; the placebo check's history was built with the history,
#: :func:`cxvalue.report.check_ready`). (Who answered is fitted with the core: the business case's
#: response weights come from it; so is failure demand when the scenario has its lever.)
ELSEWHERE = ("journeys", "key_drivers", "closing_the_loop", "failure_demand", "placebo")
#: Customers in the history from which they do (a fresh process's imports cost a few seconds).
SECOND_PROCESS_FROM = 100_000


@dataclass
class Analysis:
    """Everything one run computes from the data, ready for notebooks and charts.

    The first fields are computed by :func:`analyse`; the parts after the business case
    (:data:`PARTS`, and ``observed``, ``value_at_stake``, ``value_per_point``, ...) the first
    time they are read.
    """

    params: dict[str, Any]
    checked: cxdata.CheckedData
    history: pd.DataFrame
    reference: str
    revenue: linkage.RevenueModel
    cost_to_serve: linkage.CostToServeModel
    churn: linkage.ChurnModel
    referrals: linkage.ReferralModel | None
    curves: pd.DataFrame
    base: pd.Series
    case: business_case.BusinessCase
    #: Where ``params["gross_margin"]`` came from: "transaction cost" or "parameter".
    margin_source: str = "parameter"
    #: Who answered among today's customers (:class:`cxvalue.who_answered.WhoAnswered`): the report's
    #: "who answered" and the source of the response weights.
    who_answered: Any = None
    #: The weights the business case used, one per history row (None: every respondent counts once,
    #: as with ``response_weights = none`` or when who answered is skipped).
    response_weights: pd.Series | None = None
    #: ``results.json`` of earlier runs (oldest first), for the scorecard's trend (:func:`cxvalue.runs.earlier_runs`).
    earlier: list[dict] = field(default_factory=list)
    #: "contractual" or "non_contractual" (:func:`cxvalue.purchases.business_model`), and why, in words.
    business_model: str = "contractual"
    business_model_reason: str = ""
    #: Non-contractual mode: how often and how long each group buys (:class:`cxvalue.purchases.PurchaseModel`).
    purchases: Any = None
    progress: Progress = field(default=quiet, repr=False, compare=False)
    #: A second process already fitting some parts (:func:`start_second_process`), or None.
    second: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ the core's summaries

    def skipped(self) -> dict[str, str]:
        """What the data could not support, for ``results.json["skipped"]``: a block's dotted path
        (``linkage.churn``, ``business_case.retention``, ...) -> the plain reason the report gives."""
        models = [("revenue", self.revenue), ("cost_to_serve", self.cost_to_serve), ("churn", self.churn)]
        if self.purchases is not None:
            models.append(("purchases", self.purchases))
        out = {f"linkage.{name}": m.skipped_ for name, m in models if not m.fitted}
        out.update({f"business_case.{what.replace(' ', '_')}": why for what, why in self.case.left_out.items()})
        return out

    def cost_to_serve_per_customer_year(self) -> float:
        """Today's base's mean cost to serve per customer-year: each group's adjusted cost to serve
        weighted by its customers today (0 when the data has no contacts)."""
        if not self.cost_to_serve.fitted:
            return 0.0
        cost = self.cost_to_serve.summary["adjusted"].astype(float)
        n = self.base.reindex(cost.index).fillna(0.0).astype(float)
        ok = cost.notna() & (n > 0)
        return float((cost[ok] * n[ok]).sum() / n[ok].sum()) if ok.any() else 0.0

    def warnings(self) -> list[str]:
        """The models' caveats and every reason a part was left out, each once."""
        seen = [*self.revenue.warnings_, *self.cost_to_serve.warnings_, *self.churn.warnings_,
                *(self.purchases.warnings_ if self.purchases is not None else []), *self.case.left_out.values()]
        return list(dict.fromkeys(seen))

    # ------------------------------------------------------------------ derived figures

    @cached_property
    def observed(self) -> pd.DataFrame:
        """The raw comparison of the groups (:func:`cxvalue.linkage.observed_summary`)."""
        from cxvalue import linkage

        return linkage.observed_summary(self.history, self.reference, self.params["min_group_size"])

    @cached_property
    def value_at_stake(self) -> float:
        """Margin a year that dissatisfaction costs today (:func:`cxvalue.business_case.value_at_stake`)."""
        from cxvalue import business_case

        return business_case.value_at_stake(self.case)

    @cached_property
    def value_per_year(self) -> pd.Series:
        """What a customer of each group brings in a year (:func:`cxvalue.business_case.group_value_per_year`)."""
        from cxvalue import business_case

        return business_case.group_value_per_year(self.case)

    @cached_property
    def customers(self) -> float:
        """Customers today (the base of the business case)."""
        return float(self.base.sum())

    @cached_property
    def headline_trend(self) -> pd.DataFrame:
        """The business case's headline in earlier runs and this one (:func:`cxvalue.runs.headline_trend`)."""
        from cxvalue import runs

        return runs.headline_trend(self.earlier, self.case.results()["business_case"])

    @cached_property
    def value_per_point(self) -> pd.Series:
        """What one more rating point of each driver is worth a year (:meth:`cxvalue.drivers.KeyDrivers.value_per_point`)."""
        return self.key_drivers.value_per_point(self.value_per_year, self.customers)

    # ------------------------------------------------------------------ the other analyses

    def _timed(self, step: str, fn: Callable[[], Any]) -> Any:
        return timed(self.progress, step, fn)

    @cached_property
    def scorecard(self):
        """The KPI scorecard (:class:`cxvalue.scorecard.Scorecard`), with the trend over ``earlier``."""
        from cxvalue.scorecard import Scorecard

        return self._timed(PARTS["scorecard"], lambda: Scorecard(self.params, self.earlier, self.business_model).fit(
            self.checked, self.case.clv["margin_per_year"], self.base))

    @cached_property
    def goal_paths(self):
        """Goals with a date read against their path (:class:`cxvalue.goals.GoalPaths`), on the scorecard."""
        from cxvalue.goals import GoalPaths

        card = self.scorecard
        return self._timed(PARTS["goal_paths"], lambda: GoalPaths(self.params, self.earlier).fit(self.checked, card))

    @cached_property
    def maturity(self):
        """The CX maturity self-assessment (:class:`cxvalue.maturity.Maturity`), with the change since ``earlier``."""
        from cxvalue.maturity import Maturity

        return self._timed(PARTS["maturity"], lambda: Maturity(self.earlier).fit(self.checked))

    @cached_property
    def key_drivers(self):
        """Key drivers of the score (:class:`cxvalue.drivers.KeyDrivers`)."""
        from cxvalue import drivers

        return self._timed(PARTS["key_drivers"], lambda: drivers.KeyDrivers.from_params(self.params).fit(self.checked))

    @cached_property
    def journeys(self):
        """Journeys vs touchpoints (:class:`cxvalue.drivers.JourneysVsTouchpoints`)."""
        from cxvalue import drivers

        p = self.params
        return self._timed(PARTS["journeys"], lambda: drivers.JourneysVsTouchpoints(
            seed=p["seed"], min_cell_size=p["min_cell_size"]).fit(self.checked, self.history))

    @cached_property
    def closing_the_loop(self):
        """Closing the loop on complaints (:class:`cxvalue.closing_the_loop.ClosingTheLoop`)."""
        from cxvalue import closing_the_loop as ctl

        settings = _closing_the_loop_settings(self.checked, self.params, self.cost_to_serve_per_customer_year())
        return self._timed(PARTS["closing_the_loop"], lambda: _fit_closing_the_loop(
            settings, ctl.complaint_history(self.checked, self.params, self.history)))

    @cached_property
    def failure_demand(self):
        """The cost of failure demand by contact reason (:class:`cxvalue.failure_demand.FailureDemand`)."""
        return self._timed(PARTS["failure_demand"], lambda: _fit_failure_demand(
            self.checked, self.history, self.params, list(self.checked.covariates), self.case, self.base))

    @cached_property
    def placebo(self):
        """The linkage comparison repeated a window before the survey (:class:`cxvalue.placebo.Placebo`)."""
        from cxvalue.placebo import Placebo

        p = self.params
        return self._timed(PARTS["placebo"], lambda: Placebo(self.reference, list(self.checked.covariates),
                                                             p["min_group_size"]).fit(self.checked, p))

    @cached_property
    def transitions(self):
        """Movement between groups (:class:`cxvalue.transitions.Transitions`)."""
        from cxvalue import transitions

        p = self.params
        return self._timed(PARTS["transitions"], lambda: transitions.Transitions(
            list(config.bands_for(p)), p["min_cell_size"]).fit(
            transitions.next_responses(self.checked, self.history, p), self.value_per_year))

    @cached_property
    def referred(self) -> pd.DataFrame:
        """Customers referred by each group (:func:`cxvalue.referrals.referred_customers`)."""
        from cxvalue import referrals

        return self._timed(PARTS["referred"], lambda: referrals.referred_customers(
            self.checked, self.history, self.params["min_cell_size"]))

    def compute_all(self, second_process: bool = False, on_part: Callable[[str], Any] | None = None) -> "Analysis":
        """Compute every part now (``cxvalue run`` does, beside the notebooks); returns ``self``.

        With ``second_process`` and a history of :data:`SECOND_PROCESS_FROM` customers or more,
        the parts of :data:`ELSEWHERE` (journeys vs touchpoints, key drivers, closing the loop,
        failure demand, the placebo check) are fitted in a :class:`SecondProcess` while this process
        computes the others, and taken as each is done; one
        handed to :func:`analyse` (``second``, from :func:`start_second_process`) may be fitting
        some of them already, and is used whatever ``second_process`` says. Their inputs are
        read here, each submitted as soon as it is read; each fitted model comes back whole and
        is the same as fitted here (closing the loop and failure demand priced here, at this
        analysis's cost to serve and margins).

        After each part computed here, on a process above 1 GB, the memory its fit left behind
        is given back (statsmodels results hold reference cycles that only the cycle collector
        frees), so one part's peak does not sit on top of the last one's garbage; then
        ``on_part(name)`` is called (``cxvalue run`` stores what is done, for the notebooks waiting
        for it).
        """
        from cxvalue.data import one_thread

        second, self.second = self.second, None
        big = len(self.history) >= SECOND_PROCESS_FROM  # below, starting a process costs more than it saves
        if (second is None and second_process and big and _can_spawn()
                and any(n not in self.__dict__ for n in ELSEWHERE)):
            second = SecondProcess()
        try:
            if second is not None:
                second.hand_over([n for n in ELSEWHERE if n not in self.__dict__ and n not in second.pending],
                                 self.checked, self.history, self.params, self.progress)
            for name in PARTS:
                if second is not None:
                    self._collect(second, on_part, wait=False)
                if name not in self.__dict__ and (second is None or name not in second.pending):
                    getattr(self, name)
                    _release_memory()
                    if on_part is not None:
                        on_part(name)
            if second is not None:
                self._collect(second, on_part, wait=True)
        finally:
            if second is not None:
                second.shutdown()
                one_thread(self.checked, on=False)
        for name in ("observed", "value_at_stake", "value_per_point", "headline_trend"):
            getattr(self, name)
        return self

    def _collect(self, second: "SecondProcess", on_part: Callable[[str], Any] | None, wait: bool) -> None:
        """Take the parts ``second`` has fitted (``wait``: all, waiting for each), priced here."""
        from cxvalue.data import one_thread

        for name, (fitted, seconds) in second.results(wait):
            if name == "closing_the_loop":  # fitted before the linkage models gave the cost to serve
                fitted.price(self.params["gross_margin"], self.cost_to_serve_per_customer_year())
            elif name == "failure_demand":  # and before the business case gave the margins
                fitted.price(self.case.clv["margin_per_year"], self.base)
            self.__dict__.setdefault(name, fitted)
            self.progress(f"{PARTS[name]} (second process)", seconds)
            if not second.pending:  # it has fitted everything: the database may take both cores again
                one_thread(self.checked, on=False)
            if on_part is not None:
                on_part(name)

    def _repr_html_(self) -> str:
        from cxvalue.display import analysis_html

        return analysis_html(self)


def _can_spawn() -> bool:
    """A fresh Python process can start from here: it re-imports ``__main__`` from its file, so
    that file must exist (a script read from stdin has none; Jupyter and ``-m`` are fine)."""
    import os
    import sys

    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.isfile(path)


def _early_inputs(name: str, checked, hist: pd.DataFrame, params: dict[str, Any], responses=None) -> tuple:
    """What :func:`_fit_part` needs to fit ``name`` of :data:`ELSEWHERE` without a database (settings, then
    frames: for the drivers, the responses first), from the data and the history only (closing the loop's
    settings without the cost to serve, failure demand's without the margins); ``responses``, when given,
    is :func:`cxvalue.drivers.responses_frame` already read."""
    from cxvalue import drivers

    if name == "closing_the_loop":
        from cxvalue import closing_the_loop as ctl

        return _closing_the_loop_settings(checked, params), ctl.complaint_history(checked, params, hist)
    if name == "failure_demand":
        from cxvalue import failure_demand as fdm

        return ({"params": params, "covariates": list(checked.covariates)}, fdm.reason_costs(checked, params),
                fdm.reason_exposure(checked, hist, params), hist)
    if name == "placebo":
        from cxvalue.placebo import shifted_history

        return ({"reference_group": config.reference_group(params), "covariates": list(checked.covariates),
                 "min_group_size": params["min_group_size"], "params": params,
                 "has_contacts": "contacts" in checked.tables}, shifted_history(checked, params))
    responses = drivers.responses_frame(checked) if responses is None else responses
    if name == "journeys":
        return {"seed": params["seed"], "min_cell_size": params["min_cell_size"]}, responses, hist
    if name == "key_drivers":
        return params, responses
    raise ValueError(name)


def _closing_the_loop_settings(checked, params: dict[str, Any], cost_to_serve: float = 0.0) -> dict[str, Any]:
    return {"covariates": list(checked.covariates), "gross_margin": params["gross_margin"],
            "horizon_years": params["horizon_years"], "discount_rate": params["discount_rate"],
            "min_group_size": params["min_group_size"], "seed": params["seed"],
            "cost_to_serve_per_customer_year": cost_to_serve}


class SecondProcess:
    """One more Python process that fits parts of :data:`ELSEWHERE` one after another, on inputs
    read here (it has no database connection), while this process fits the others: the fits are
    single-threaded, so two processes use two cores. Its start-up and imports are paid once; it
    gives back what a fit left behind before the next, so it does not hold two fits' peaks."""

    def __init__(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.pending: dict[str, Any] = {}

    def submit(self, name: str, args: tuple) -> None:
        self.pending[name] = self.pool.submit(_fit_part, name, *args)

    def hand_over(self, names: list[str], checked, hist: pd.DataFrame, params: dict[str, Any],
                  progress: Progress = quiet) -> None:
        """Read the inputs of the parts ``names`` (:func:`_early_inputs`; the responses once for both
        drivers) and submit each as soon as it is read, giving back what the reading left behind.

        From here on the run's database engine works on one thread (:func:`cxvalue.data.one_thread`):
        with this process's fits on the other core, a query on two threads took a third more CPU
        time, and slowed the fits beside it by as much (bench/README.md)."""
        from cxvalue.data import one_thread

        if names:
            one_thread(checked)
        responses = None
        for name in names:
            args = timed(progress, f"{PARTS[name]}: its data",
                         lambda n=name: _early_inputs(n, checked, hist, params, responses))
            if name in ("journeys", "key_drivers"):
                responses = args[1]
            self.submit(name, args)
            _release_memory()  # before the next and the core

    def results(self, wait: bool = True):
        """(name, (fitted model, seconds)) of each part handed over and not yet taken, in that order, as
        each ends; without ``wait``, only those already fitted."""
        for name, future in list(self.pending.items()):
            if not (wait or future.done()):
                return  # fitted in turn: the later ones are not done either
            del self.pending[name]
            yield name, future.result()

    def shutdown(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def start_second_process(checked, hist: pd.DataFrame, params: dict[str, Any], progress: Progress | None = None,
                         second: "SecondProcess | None" = None):
    """For ``cxvalue run``: a :class:`SecondProcess` already fitting the parts of :data:`ELSEWHERE` (their
    inputs read here, the responses once), to hand to :func:`analyse` (``second``), so that it works
    while this process fits the core; None on a history under :data:`SECOND_PROCESS_FROM` customers
    or where no process can be started. ``second``: one started earlier (:func:`warm_second_process`),
    used, or shut down when the history turns out too small."""
    if len(hist) < SECOND_PROCESS_FROM or not _can_spawn():
        if second is not None:
            second.shutdown()
        return None
    second = second or SecondProcess()
    try:
        lever = bool(params["scenario"]["failure_demand_reasons"])  # then the core fits failure demand
        second.hand_over([n for n in ELSEWHERE if not (lever and n == "failure_demand")],
                         checked, hist, params, progress or quiet)
    except BaseException:
        second.shutdown()
        raise
    return second


def warm_second_process(checked) -> "SecondProcess | None":
    """For ``cxvalue run``, once the data is checked: a :class:`SecondProcess` started now, importing what
    its fits need (a few seconds) while this process builds the history, for :func:`start_second_process`;
    None where the data has fewer customers than :data:`SECOND_PROCESS_FROM` (the history, one row per
    customer at most, cannot reach it) or no process can be started."""
    if checked.data_quality["customers"]["rows_used"] < SECOND_PROCESS_FROM or not _can_spawn():
        return None
    second = SecondProcess()
    second.pool.submit(_warm_up)
    return second


def _warm_up() -> None:
    """Import what the fits of :data:`ELSEWHERE` need (in the second process, before its first fit)."""
    import statsmodels.api  # noqa: F401

    from cxvalue import closing_the_loop, drivers, failure_demand, placebo  # noqa: F401


def _fit_part(name: str, settings: dict[str, Any], *frames: pd.DataFrame):
    """Fit part ``name`` of :data:`ELSEWHERE` on its inputs (:func:`_early_inputs`), in a
    second process; returns the fitted model and the seconds the fit took."""
    import gc

    from cxvalue import drivers
    from cxvalue import failure_demand as fdm

    t0 = time.perf_counter()
    # what this process holds now (its modules, the inputs) is left out of the fit's own full collections
    # (journeys vs touchpoints runs one after each of its 30 fits): 1.8 of its 13.6 s of CPU at 1M
    gc.freeze()
    try:
        if name == "closing_the_loop":
            fitted = _fit_closing_the_loop(settings, *frames)
        elif name == "failure_demand":
            fitted = fdm.FailureDemand.from_params(settings["params"], settings["covariates"]).fit(*frames)
        elif name == "key_drivers":
            fitted = drivers.KeyDrivers.from_params(settings).fit(*frames)
        elif name == "placebo":
            from cxvalue.placebo import Placebo

            fitted = Placebo(settings["reference_group"], settings["covariates"], settings["min_group_size"]
                             ).fit_shifted(*frames, settings["params"], settings["has_contacts"])
        else:
            fitted = drivers.JourneysVsTouchpoints(**settings).fit(*frames)
    finally:
        gc.unfreeze()
    seconds = time.perf_counter() - t0
    _release_memory()  # before the next fit in this process
    return fitted, seconds


def _fit_closing_the_loop(settings: dict[str, Any], complaints: pd.DataFrame):
    """Closing the loop fitted on ``complaints`` (here or in a second process)."""
    from cxvalue.closing_the_loop import ClosingTheLoop

    return ClosingTheLoop(**settings).fit(complaints)


def _release_memory(above_bytes: float = 1e9) -> None:
    import ctypes
    import gc
    import os

    try:
        with open("/proc/self/statm") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - not Linux
        rss = above_bytes
    if rss < above_bytes:  # a full collection costs about half a second: not worth it on small data
        return
    gc.collect()
    try:  # glibc keeps freed memory in its arenas unless asked to return it
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def analyse(source: Any, params: dict[str, Any], *, checked: cxdata.CheckedData | None = None,
            hist: pd.DataFrame | None = None, earlier: list[dict] | None = None,
            progress: Progress | None = None, second: "SecondProcess | None" = None) -> Analysis:
    """Check ``source``, build the history, fit the linkage models and price the scenario.

    The referrals model is fitted only when some customer was referred inside a post window
    (``history.post_referred``); without referrals the business case has no referrals lever.
    Who answered is fitted among today's customers (:func:`_response_weights`); with
    ``response_weights = auto`` its weights make the respondents stand for today's customers in
    the business case.
    With ``margin_source = "auto"`` and transactions that carry a ``cost``, the margin on
    revenue is the data's own (:func:`cxvalue.value.measured_gross_margin`) and replaces
    ``gross_margin`` in ``Analysis.params``.

    ``checked`` and ``hist``, when given, are this source's checked data and history (so a run
    that checked the data first does not check it again). ``earlier``: earlier runs'
    ``results.json`` for the scorecard's trend. ``progress(step, seconds)`` hears of each step's
    start (seconds None) and end. ``second``: a :class:`SecondProcess` already fitting parts on this
    data (:func:`start_second_process`), which :meth:`Analysis.compute_all` collects from.
    """
    from cxvalue import business_case, history, linkage, value
    from cxvalue import data as cxdata
    from cxvalue import purchases as purchases_mod

    progress = progress or quiet
    reference = config.reference_group(params)
    if checked is None:
        checked = timed(progress, "checking the data", lambda: cxdata.check(source, params))
    if hist is None:
        hist = timed(progress, "customer history", lambda: history.history(checked, params))
    source_of_margin = "parameter"
    measured = value.measured_gross_margin(hist) if params["margin_source"] == "auto" else None
    if measured is not None:
        params = {**params, "gross_margin": measured}
        source_of_margin = "transaction cost"
    cov = list(checked.covariates)
    size = params["min_group_size"]
    model, model_reason = purchases_mod.business_model(params, checked)
    non_contractual = model == "non_contractual"

    def fit_linkage():
        revenue = linkage.RevenueModel(reference, cov, size).fit(hist)
        cost = linkage.CostToServeModel(reference, cov, size)
        if "contacts" in checked.tables:
            cost.fit(hist)
        else:
            cost.skip(hist, NO_CONTACTS)
        churn = linkage.ChurnModel(reference, cov, size, by_unit=True)
        if non_contractual:
            churn.skip(hist, purchases_mod.NON_CONTRACTUAL_CHURN)
        else:
            churn.fit(hist)
        referrals = linkage.ReferralModel(reference, cov, size).fit(hist) if hist["post_referred"].sum() > 0 else None
        return revenue, cost, churn, referrals

    revenue, cost, churn, referrals = timed(progress, "linkage models", fit_linkage)
    _release_memory()  # the fits' working copies, before who answered's own (the run's peak sat on both)
    bought = None
    if non_contractual:
        bought = timed(progress, "purchase model (BG/NBD)",
                       lambda: purchases_mod.PurchaseModel(reference, cov, size).fit(checked, hist, params))

    who, weights = timed(progress, "who answered", lambda: _response_weights(checked, hist, params, cov))

    def price():
        curves = churn.km_curves(hist)
        base = history.active_customers_by_group(checked, hist, weights)
        if bought is not None and bought.fitted:
            case = business_case.evaluate_non_contractual(bought, cost, base, params, history=hist, weights=weights)
        else:
            case = business_case.evaluate(revenue, cost, churn, curves, base, params, referrals, history=hist,
                                          weights=weights)
            if bought is not None:  # the purchase model could not be fitted: it, not churn, is why
                case.left_out["retention"] = f"{bought.skipped_} The case has no retention lever."
        case.inputs["margin_source"] = source_of_margin
        case.inputs["response_weights"] = "respondents weighted to today's base" if weights is not None else \
            "each respondent counts once"
        return curves, base, case

    curves, base, case = timed(progress, "business case", price)
    failure = None
    if params["scenario"]["failure_demand_reasons"]:
        case, failure = timed(progress, "failure demand lever",
                              lambda: failure_demand_lever(checked, hist, params, cov, case, base))
    analysis = Analysis(params, checked, hist, reference, revenue, cost, churn, referrals, curves, base, case,
                        source_of_margin, who, weights, list(earlier or []), model, model_reason, bought, progress,
                        second)
    if failure is not None:  # the part the lever was priced from: the same fit the report shows
        analysis.__dict__["failure_demand"] = failure
    return analysis


def failure_demand_lever(checked, hist: pd.DataFrame, params: dict[str, Any], cov: list[str],
                         case, base: pd.Series, fitted=None):
    """The case with the failure-demand lever of ``scenario.failure_demand_reasons`` ("top" or
    reasons separated by commas), and the fitted :class:`cxvalue.failure_demand.FailureDemand`.

    The lever is worth the yearly value of removing ``failure_demand.share_removed`` of the
    chosen reasons' contacts (cost saved plus a year of margin per customer kept), following the
    scenario's ramp and lag (:func:`cxvalue.business_case.add_yearly_lever`). What the data
    cannot support (no reasons; a reason the data does not have, or too rare to show) goes into
    ``case.left_out`` and the rest of the case stands. ``fitted``: the FailureDemand already fitted
    on this data and case (else it is fitted here)."""
    from cxvalue import business_case
    from cxvalue import failure_demand as fdm

    fd = fitted or _fit_failure_demand(checked, hist, params, cov, case, base)
    left_out = dict(case.left_out)
    if fd.skipped_:
        left_out["failure_demand"] = fd.skipped_
        return replace(case, left_out=left_out), fd
    wanted = params["scenario"]["failure_demand_reasons"].strip()
    names = list(fd.top_) if wanted.lower() == "top" else [x.strip() for x in wanted.split(",") if x.strip()]
    shown = [str(r) for r in fd.summary_.index]
    chosen = [r for r in dict.fromkeys(names) if r in shown and r != fdm.OTHER]
    pooled = set(fd.costs_.attrs.get("pooled", []))
    for r in dict.fromkeys(names):
        if r in chosen:
            continue
        why = (f"fewer than {params['min_cell_size']} customers contacted about it in the last 12 months"
               if r in pooled else f"the data has no contact about it in the last 12 months (reasons: {', '.join(shown)})")
        left_out[f"failure demand: {r}"] = (f"The scenario names the contact reason '{r}' for its failure-demand lever, "
                                            f"but {why}, so it is left out of the lever.")
    if not chosen:
        left_out.setdefault("failure_demand", "The scenario's failure-demand lever has no contact reason to remove.")
        return replace(case, left_out=left_out), fd
    s = fd.summary_.loc[chosen]
    detail = {"reasons": chosen, "share_removed": float(fd.share_removed),
              "cost_saved_per_year": float(s["cost_saved_per_year"].sum()),
              "retention_value_per_year": float(s["retention_value_per_year"].fillna(0.0).sum()),
              "value_by_reason": {r: float(v) for r, v in s["value_per_year"].items()},
              "convention": ("Removing a share of a reason's contacts saves that share of its cost and keeps the customers "
                             "it would have driven away, each valued at one year of the base's mean margin; the part "
                             "made at the start of programme year k pays from lag years later. Additive to the moves: "
                             "where the reasons are what the dissatisfied contact about, the moves' cost-to-serve lever "
                             "already prices part of it.")}
    case = business_case.add_yearly_lever(replace(case, left_out=left_out), "failure_demand",
                                          float(s["value_per_year"].sum()), fd.yearly_value_draws(chosen), params,
                                          detail, label=f"Failure demand removed ({fd.share_removed:.0%} of "
                                                        f"{len(chosen)} reason{'s' if len(chosen) > 1 else ''})",
                                          cost_saved_per_year=detail["cost_saved_per_year"])
    return case, fd


def _fit_failure_demand(checked, hist: pd.DataFrame, params: dict[str, Any], cov: list[str], case, base: pd.Series):
    """The cost of failure demand on this data, valued at the case's margins and today's base."""
    from cxvalue import failure_demand as fdm

    return fdm.FailureDemand.from_params(params, cov).fit(
        fdm.reason_costs(checked, params), fdm.reason_exposure(checked, hist, params), hist,
        case.clv["margin_per_year"], base)


def _response_weights(checked, hist: pd.DataFrame, params: dict[str, Any], cov: list[str]):
    """Who answered among today's customers (:class:`cxvalue.who_answered.WhoAnswered`) and its
    weights per history row; the weights are None with ``response_weights = none`` and when the
    fit is skipped (e.g. every customer answered: nothing to correct)."""
    from cxvalue import who_answered as wa

    labels = list(config.bands_for(params))
    # today's customers only: the case prices today's base, and among everyone ever in the study window
    # the non-respondents include customers who left before anyone could ask them (small accounts, on
    # most data), which would make the weights favour the respondents who look like them
    base = wa.response_base(checked, hist, params, current_only=True)
    who = wa.WhoAnswered(cov, groups=labels).fit(base)
    if params.get("response_weights", "auto") == "none" or who.skipped_ or who.weights_.empty:
        return who, None
    w = hist["customer_id"].astype(str).map(who.weights_.rename(index=str)).fillna(1.0)
    return who, w.astype(float)



def load_or_analyse(data: Any, params: dict[str, Any], analysis_dir: str = "", runs_dir: str | None = "",
                    declared: list[str] | None = None):
    """The run's stored analysis when ``analysis_dir`` holds one computed from these parameters
    (``declared``: only these dotted names are compared; default all), this data and these
    earlier runs (:func:`cxvalue.store.load`); else :func:`analyse` here and now, each part
    computed on first use. ``runs_dir`` None: the caller does not know the earlier runs (a
    notebook that shows no trend does not declare them), so they are not compared."""
    from cxvalue import runs, store

    earlier = runs.earlier_runs(runs_dir)
    if analysis_dir:
        stored = store.load(analysis_dir, params, str(data), None if runs_dir is None else earlier, declared)
        if stored is not None:
            return stored
    return analyse(data, params, earlier=earlier)


def for_notebook(namespace: dict[str, Any]):
    """What a report notebook calls with its ``globals()``: its parameters
    (:func:`cxvalue.config.from_notebook`), then :func:`load_or_analyse` with its ``data``,
    ``analysis_dir`` and ``runs_dir``, comparing only the parameters the notebook declares (and
    the earlier runs only when it declares ``runs_dir``: papermill hands a notebook only what it
    declares)."""
    params = config.from_notebook(namespace)
    declared = [p.name for p in config.PARAMETERS if config.notebook_name(p.name) in namespace]
    return load_or_analyse(namespace.get("data", "demo"), params, namespace.get("analysis_dir", ""),
                           namespace.get("runs_dir"), declared)
