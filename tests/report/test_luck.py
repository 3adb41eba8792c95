"""Selection luck over an experiment: out-of-sample rows only (``oos`` preferred, never ``test``), the
deflated Sharpe ratio of the best trials, PBO on the shared rows, IC of the regressors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from atlas_ray import report
from atlas_ray.experiment import ResultsObject
from atlas_ray.report import stats
from atlas_ray.report._luck import out_of_sample_split, trial_returns

COST = 1e-4


def _resplit(result: ResultsObject, change) -> ResultsObject:
    """A copy of ``result`` whose predictions went through ``change`` (a frame -> frame function)."""
    frame = result.predictions
    return dataclasses.replace(result, predictions=change(frame.copy()) if not frame.empty else frame)


def _same(a: report.SelectionLuck, b: report.SelectionLuck) -> None:
    pd.testing.assert_frame_equal(a.sharpes, b.sharpes)
    assert a.deflated == b.deflated
    assert a.pbo is not None and b.pbo is not None
    np.testing.assert_array_equal(a.pbo.logits, b.pbo.logits)
    pd.testing.assert_frame_equal(a.information, b.information)


def test_the_statistics_use_validation_rows_and_never_test_rows(june_a):
    luck = report.selection_luck(june_a.results, cost=COST)
    assert luck.split == "validation" and luck.tried == 16
    assert len(luck.sharpes) == 15  # the failed trial has no predictions
    assert any("1 of 16 trials have no validation backtest" in note for note in luck.notes)

    def scramble_test_rows(frame: pd.DataFrame) -> pd.DataFrame:
        test = frame["split"] == "test"
        frame.loc[test, "label_value"] = -1000 * frame.loc[test, "label_value"]
        if "prob_up" not in frame.columns:  # regressors: reversed predictions on the test rows
            frame.loc[test, "prediction"] = -frame.loc[test, "prediction"].to_numpy()
        return frame

    scrambled = [_resplit(r, scramble_test_rows) for r in june_a.results]
    _same(luck, report.selection_luck(scrambled, cost=COST))
    with pytest.raises(ValueError, match="never read the sealed test rows"):
        trial_returns(june_a.results[0], "test", COST)


def test_walk_forward_oos_rows_are_preferred_to_validation(june_a):
    """With ``oos`` rows present they are used, not the ``validation`` ones: the validation rows are
    renamed ``oos`` and the train rows renamed ``validation``; the figures stay the same."""
    def shift(frame: pd.DataFrame) -> pd.DataFrame:
        split = frame["split"].astype(str)
        renamed = np.where(split == "train", "validation", split)
        frame["split"] = np.where(split == "validation", "oos", renamed)
        return frame

    moved = [_resplit(r, shift) for r in june_a.results]
    assert out_of_sample_split(june_a.results) == "validation" and out_of_sample_split(moved) == "oos"
    original = report.selection_luck(june_a.results, cost=COST)
    luck = report.selection_luck(moved, cost=COST)
    assert luck.split == "oos"
    _same(original, luck)


def test_the_best_trials_are_deflated_against_all_of_them(june_a):
    summary = report.summary_frame(june_a.results, COST)
    best_loss = str(summary[summary["task"] == "multiclass"].sort_values("loss")["trial_id"].iloc[0])
    luck = report.selection_luck(june_a.results, cost=COST,
                                 best={"best multiclass trial by loss": best_loss,
                                       "best of nothing": "logit_00010"})
    top = luck.sharpes.sort_values("sharpe")["trial_id"].iloc[-1]
    roles = {d.trial_id: d.role for d in luck.deflated}
    assert "highest Sharpe ratio" in roles[top]
    assert "best multiclass trial by loss" in roles[best_loss]
    assert any("best of nothing (logit_00010) has no validation backtest" in n for n in luck.notes)
    for deflated in luck.deflated:
        assert deflated.trials == 15
        assert deflated.sharpe_variance == pytest.approx(np.var(luck.sharpes["sharpe"], ddof=1))
        assert deflated.expected_max == pytest.approx(stats.expected_max_sharpe(15, deflated.sharpe_variance))
        assert 0.0 <= deflated.dsr <= 1.0
        # the summary table's Sharpe ratio is the same statistic on the same rows
        row = summary[summary["trial_id"] == deflated.trial_id].iloc[0]
        assert row["sharpe"] == pytest.approx(deflated.sharpe)
        assert deflated.annualised == pytest.approx(deflated.sharpe * np.sqrt(365.25 * 24 * 60))
    assert luck.pbo is not None and luck.pbo.trials == 15 and luck.pbo.partitions == 16
    assert luck.pbo.rows == 4320  # 15 to 17 March, every minute
    assert set(luck.information["trial_id"]) == {"ridge_00013", "ridge_00014", "sgdreg_00015"}
    assert (luck.information["days"] == 3).all()
