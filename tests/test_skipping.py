"""One mechanism for skipping an analysis the data cannot support."""

from __future__ import annotations

import pandas as pd
import pytest

from cxvalue import skipping


class Mean:
    """A toy analysis: the mean of ``x``, which needs at least ``need`` rows."""

    def __init__(self, need: int = 2):
        self.need = need

    @skipping.skippable
    def fit(self, frame: pd.DataFrame) -> "Mean":
        skipping.require("x" in frame.columns, "The mean needs a column x.")
        self.n_ = len(frame)
        skipping.require(len(frame) >= self.need, f"The mean needs {self.need} rows; there are {len(frame)}.")
        self.mean_ = float(frame["x"].mean())
        return self

    def _empty(self) -> None:
        self.mean_ = None


@skipping.skippable_frame(["x"], index="row")
def frame_of(values: list[float]) -> pd.DataFrame:
    skipping.require(values, "No values were given.")
    return pd.DataFrame({"x": values})


def test_a_failed_check_gives_a_result_of_the_usual_shape_with_its_reason():
    m = Mean(need=3).fit(pd.DataFrame({"x": [1.0, 2.0]}))
    assert m.skipped_ == "The mean needs 3 rows; there are 2." and m.mean_ is None and m.n_ == 2
    assert m.warnings_ == [m.skipped_]
    assert m.fit(pd.DataFrame({"x": [1.0, 2.0, 6.0]})).skipped_ is None and m.mean_ == 3.0 and m.warnings_ == []
    assert Mean().fit(pd.DataFrame({"y": [1]})).skipped_ == "The mean needs a column x."
    assert not hasattr(Mean().fit(pd.DataFrame({"y": [1]})), "n_")  # a refit starts from nothing fitted


def test_a_skipped_input_table_skips_the_analysis_it_feeds():
    empty = frame_of([])
    assert empty.empty and list(empty.columns) == ["x"] and empty.index.name == "row"
    assert skipping.reason(empty) == "No values were given." and skipping.reason(frame_of([1.0])) is None
    assert Mean().fit(empty).skipped_ == "No values were given."


def test_skipped_blocks_hold_only_the_skipped_ones():
    ran, skipped = Mean(1).fit(pd.DataFrame({"x": [1.0]})), Mean(5).fit(pd.DataFrame({"x": [1.0]}))
    blocks = {"a.ran": ran, "a.skipped": skipped, "a.table": frame_of([]), "a.block": {"skipped": None},
              "a.json": {"skipped": "Why."}}
    assert skipping.skipped_blocks(blocks) == {"a.skipped": "The mean needs 5 rows; there are 1.",
                                               "a.table": "No values were given.", "a.json": "Why."}


def test_programming_errors_still_raise():
    with pytest.raises(AttributeError):
        Mean().fit(None)
