import json
import math

import numpy as np

from cxvalue import results


def test_clean_rounds_and_converts():
    out = results.clean({"a": np.float64(1 / 3), "b": np.int64(3), "c": float("nan"), "d": [np.bool_(True)], 1: "x"})
    assert out == {"a": 0.333333333333, "b": 3, "c": None, "d": [True], "1": "x"}
    # last-bit noise from a parallel sum does not change the output
    assert results.dumps({"x": 0.1 + 0.2}) == results.dumps({"x": 0.3})


def test_parts_merge_in_order(tmp_path):
    results.save_part(tmp_path, "01-a", {"groups": ["a"], "linkage": {"revenue": {"a": {"observed": 1.0}}}, "warnings": ["w1"]})
    results.save_part(tmp_path, "02-b", {"linkage": {"revenue": {"a": {"adjusted": 2.0}}}, "warnings": ["w2", "w1"]})
    merged = results.merge_parts(tmp_path)
    assert merged["schema_version"] == 1
    assert merged["linkage"]["revenue"]["a"] == {"observed": 1.0, "adjusted": 2.0}
    assert merged["warnings"] == ["w1", "w2"]
    assert results.save_part("", "x", {}) is None
    assert json.loads(results.dumps(merged)) == results.clean(merged)
    assert not math.isnan(merged["linkage"]["revenue"]["a"]["adjusted"])
