"""The experiment contract: what a search writes and the report and the live side read.

One owner for each part of it, each in one file:

* ``_layout``: where the files are (``experiment.json``, ``trials/<id>/result.json``, ``model.keras``);
* ``_record``: the experiment record ``experiment.json`` (``Experiment``), including the scheduler's
  rungs as the scheduler decided them (``Experiment.rungs``, ``asha_rungs``);
* ``_results``: a trial's ``ResultsObject`` and the only code that reads, writes and settles
  ``result.json``;
* ``_model``: a stored trial's model (``save_model`` / ``load_model``: a Keras ``model.keras`` or a
  LightGBM booster's ``model.txt``) and the one prediction function;
* ``_direction``: whether a metric is minimised (``Mode``, ``is_minimised``);
* ``_gate``: the promotion gate's test of a challenger against the champion on per-bar losses
  (Diebold-Mariano with the HLN correction and a HAC variance; ``PromotionGate``);
* ``_score``: a trial's score. **A trial's score is its validation metric at the last epoch it
  reported**: the weights that are saved, evaluated, finalized and served (never its best epoch's
  figure). The search's progress line and tables, the report, ``finalize`` and ``serve --best`` all
  use ``trial_score``.

This package sits on the floor below ``atlas_ray.search``, ``atlas_ray.report`` and
``atlas_ray.serve`` (beside ``atlas_ray.metrics``) and imports none of them: the search writes through
it, the report and the live side read through it.
"""

from atlas_ray.experiment._direction import MINIMISED, Mode, direction, is_minimised
from atlas_ray.experiment._gate import GATE_METHOD, GateDecision, PromotionGate, diebold_mariano
from atlas_ray.experiment._layout import (
    CURVES_FILE,
    EXPERIMENT_FILE,
    MODEL_FILE,
    MODEL_FILES,
    PREDICTIONS_FILE,
    RESULT_FILE,
    TREES_MODEL_FILE,
    TRIALS_DIR,
    has_experiment,
    trial_directory,
    trial_ids_on_disk,
)
from atlas_ray.experiment._model import is_booster, load_model, model_file_of, predict_proba, save_model
from atlas_ray.experiment._record import (
    Experiment,
    asha_rungs,
    experiment_from_document,
    load_experiment,
    load_results,
    now,
    read_experiment_document,
    write_experiment,
)
from atlas_ray.experiment._results import (
    FINAL_STATUSES,
    JSONValue,
    ResultsObject,
    TrialIdentity,
    TrialStatus,
    jsonable,
    read_result,
    read_status,
    settle_result,
    write_result,
)
from atlas_ray.experiment._score import SCORE_SPLIT, best_trials, read_score, score_name, trial_score

__all__ = [
    "CURVES_FILE",
    "EXPERIMENT_FILE",
    "Experiment",
    "FINAL_STATUSES",
    "GATE_METHOD",
    "GateDecision",
    "JSONValue",
    "MINIMISED",
    "MODEL_FILE",
    "MODEL_FILES",
    "Mode",
    "PREDICTIONS_FILE",
    "PromotionGate",
    "RESULT_FILE",
    "ResultsObject",
    "SCORE_SPLIT",
    "TREES_MODEL_FILE",
    "TRIALS_DIR",
    "TrialIdentity",
    "TrialStatus",
    "asha_rungs",
    "best_trials",
    "diebold_mariano",
    "direction",
    "experiment_from_document",
    "has_experiment",
    "is_booster",
    "is_minimised",
    "jsonable",
    "load_experiment",
    "load_model",
    "load_results",
    "model_file_of",
    "now",
    "predict_proba",
    "read_experiment_document",
    "read_result",
    "read_score",
    "read_status",
    "save_model",
    "score_name",
    "settle_result",
    "trial_directory",
    "trial_ids_on_disk",
    "trial_score",
    "write_experiment",
    "write_result",
]
