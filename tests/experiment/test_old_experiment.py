"""An experiment written before atlas_ray.experiment existed still reads in the report and serves.

``fixtures/old_experiment`` is a real search (two logistic trials on the real Coinbase / Kraken 1-minute
bars of 1-2 March 2023, ASHA max_t=3, grace 1, reduction 3, seed 11) written by the code at commit
989b236, before the experiment package; Tune's own files were left out, the trials kept whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atlas_ray.experiment import TrialStatus, load_experiment, load_results, predict_proba
from atlas_ray.report import load_experiment_for_report
from atlas_ray.search import load_model
from atlas_ray.serve._trial import find_trial

OLD = Path(__file__).parent / "fixtures" / "old_experiment"


def test_the_record_and_results_read() -> None:
    record = load_experiment(str(OLD))
    assert record.status == "finished" and record.rungs == (1, 3)
    results = load_results(str(OLD))
    assert {r.status for r in results} == {TrialStatus.COMPLETED, TrialStatus.STOPPED}


def test_the_report_reads_it() -> None:
    experiment = load_experiment_for_report(str(OLD))
    assert experiment.name == "old_experiment" and len(experiment.results) == 2
    assert experiment.missing == ()
    assert experiment.rungs == (1, 3)


def test_serve_finds_the_best_trial_and_its_model_predicts_as_stored() -> None:
    served = find_trial(str(OLD), best=True)
    assert served.trial_id == "e1e62_00000"  # validation loss 1.172634 at its last epoch, the lower
    model = load_model(served.result)
    rows = served.result.predictions
    assert len(rows) and "prob_up" in rows.columns
    assert predict_proba(model, np.zeros((2, len(served.result.features)), dtype="float32"),
                         served.task).shape == (2, 3)
