"""WorkSpecs searched with Ray Tune and ASHA; every trial gathered into a ResultsObject.

``python -m atlas_ray.search SPEC`` runs a spec module (``SPEC = WorkSpec(...)``); ``run`` does the
same from Python; ``load_results`` / ``load_experiment`` read an experiment back (a local path or a
storage URI). The results format, the experiment record and a trial's score are
``atlas_ray.experiment``'s; the names re-exported here keep working.
"""

from atlas_ray.experiment import (  # the experiment contract, re-exported for user code
    Experiment,
    Mode,
    ResultsObject,
    TrialIdentity,
    TrialStatus,
    load_experiment,
    load_results,
    read_result,
    write_result,
)
from atlas_ray.search._asha import ASHA
from atlas_ray.search._gather import load_model
from atlas_ray.search._runner import DEFAULT_STORAGE, experiment_uri, run
from atlas_ray.search._searcher import Searcher
from atlas_ray.search._spec import ModelSpec, PlannedTrial, Resources, WorkSpec, WorkUnit, trial_plan
from atlas_ray.search._spec_loader import load_spec
from atlas_ray.search._trainable import NaNLossError
from atlas_ray.search._validate import validate
from atlas_ray.search._zoo import ZOO, ZooModel, callable_model, get_model

__all__ = [
    "ASHA",
    "DEFAULT_STORAGE",
    "Experiment",
    "Mode",
    "ModelSpec",
    "NaNLossError",
    "PlannedTrial",
    "Resources",
    "ResultsObject",
    "Searcher",
    "TrialIdentity",
    "TrialStatus",
    "WorkSpec",
    "WorkUnit",
    "ZOO",
    "ZooModel",
    "callable_model",
    "experiment_uri",
    "get_model",
    "load_experiment",
    "load_model",
    "load_results",
    "load_spec",
    "read_result",
    "run",
    "trial_plan",
    "validate",
    "write_result",
]
