"""Where an experiment's files are: the one place that names them and builds ``trials/<id>``.

Experiment directory (a local path or any pyarrow filesystem URI, see ``atlas_ray._storage``)::

    EXPERIMENT/
      experiment.json            the experiment record (``_record``)
      trials/<trial_id>/
        result.json              the trial's ResultsObject (``_results``), written last
        predictions.parquet
        curves.parquet
        model.keras              the trained Keras model (absent for failed trials), or
        model.txt                a LightGBM trial's booster in LightGBM's own text format
"""

from __future__ import annotations

import pyarrow.fs as pafs

from atlas_ray import _storage

__all__ = [
    "CURVES_FILE",
    "EXPERIMENT_FILE",
    "MODEL_FILE",
    "MODEL_FILES",
    "PREDICTIONS_FILE",
    "RESULT_FILE",
    "TREES_MODEL_FILE",
    "TRIALS_DIR",
    "has_experiment",
    "trial_directory",
    "trial_ids_on_disk",
]

EXPERIMENT_FILE = "experiment.json"
TRIALS_DIR = "trials"
RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.parquet"
CURVES_FILE = "curves.parquet"
MODEL_FILE = "model.keras"
TREES_MODEL_FILE = "model.txt"
MODEL_FILES = (MODEL_FILE, TREES_MODEL_FILE)
"""Every name a trial's model file has: ``result.json``'s ``model_file`` says which one a trial holds."""


def trial_directory(experiment: str, trial_id: str) -> str:
    """``EXPERIMENT/trials/<trial_id>``: where one trial's files are (a path or URI, as ``experiment``)."""
    return _storage.join(str(experiment), TRIALS_DIR, trial_id)


def has_experiment(directory: str) -> bool:
    """Whether ``directory`` holds an ``experiment.json``."""
    fs, base = _storage.filesystem(str(directory))
    return bool(fs.get_file_info(f"{base}/{EXPERIMENT_FILE}").type == pafs.FileType.File)


def trial_ids_on_disk(directory: str) -> list[str]:
    """Ids of the trials under ``directory/trials`` that hold a ``result.json``, sorted."""
    fs, base = _storage.filesystem(str(directory))
    selector = pafs.FileSelector(f"{base}/{TRIALS_DIR}", allow_not_found=True)
    ids = []
    for info in fs.get_file_info(selector):
        if info.type == pafs.FileType.Directory:
            result = fs.get_file_info(f"{info.path}/{RESULT_FILE}")
            if result.type == pafs.FileType.File:
                ids.append(info.base_name)
    return sorted(ids)
