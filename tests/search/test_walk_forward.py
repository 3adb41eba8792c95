"""Walk-forward search, the sealed test set and reproducibility, on a real local Ray cluster and real
minute bars: each trial trains on every fold and keeps per-fold metrics and the joined out-of-sample
predictions; nothing touches the test block until ``finalize`` opens it (recorded, a second opening
too); experiment.json holds the provenance; the same spec run twice gives identical metrics."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray._cli import run_cli
from atlas_ray.search import TrialStatus, load_experiment, load_results, run
from atlas_ray.search.__main__ import main
from atlas_ray.search._finalize import finalize
from atlas_ray.search._spec_loader import load_spec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

FOLDS = 2
SPEC_TEXT = """
from atlas_ray.featurestore import WalkForward
from tests.search import search_specs

SPEC = search_specs.spec(
    "{name}",
    [search_specs.small_dnn(num_samples=2)],
    max_t=2,
    grace_period=2,
    split=WalkForward(folds={folds}, test=0.15, embargo=2),
    seed=5,
)
"""


def _search(name: str, tmp: Path, store) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    path = tmp / f"{name}.py"
    path.write_text(textwrap.dedent(SPEC_TEXT.format(name=name, folds=FOLDS)))
    out = io.StringIO()
    spec = load_spec(path)
    experiment = run(spec, storage=str(tmp / "experiments"), store=store, spec_path=str(path), out=out)
    return experiment, out.getvalue()


@pytest.fixture(scope="module")
def searches(ray_cluster: None, minute_store, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("walk_forward")
    first = _search("wf_first", tmp, minute_store)
    second = _search("wf_second", tmp, minute_store)
    return first, second


def test_each_trial_trains_on_every_fold_and_keeps_the_joined_oos(searches) -> None:  # type: ignore[no-untyped-def]
    (experiment, printed), _ = searches
    results = load_results(experiment)
    assert len(results) == 2
    for result in results:
        assert result.status is TrialStatus.COMPLETED, result.error
        assert set(result.metrics) == {"train", "validation", "oos"}  # no test during the search
        assert len(result.folds) == FOLDS
        for name in ("loss", "accuracy"):
            per_fold = [fold["validation"][name] for fold in result.folds]
            assert result.metric(name, "validation") == pytest.approx(float(np.mean(per_fold)))
        predictions = result.predictions
        assert set(predictions["split"]) == {"train", "oos"}
        oos = predictions[predictions["split"] == "oos"]
        assert list(oos["fold"].unique()) == list(range(1, FOLDS + 1))
        stamps = pd.DatetimeIndex(oos["timestamp"])
        assert stamps.is_monotonic_increasing and not stamps.has_duplicates
        accuracy = float((oos["reality"] == oos["prediction"]).mean())
        assert result.metric("accuracy", "oos") == pytest.approx(accuracy)
        # every fold validates after its training window, with the purge between
        for fold in result.folds:
            assert fold["train_span"][1] < fold["validation_span"][0]
        assert result.folds[0]["validation_span"][1] < result.folds[1]["validation_span"][0]
        # the curves report the mean over the folds (what ASHA decided on)
        assert list(result.curves["epoch"]) == [1, 2]
    assert "fold 2: train" in printed and "test (sealed)" in printed
    table = printed.split("best trials by")[1].split("experiment:")[0]
    assert "oos loss" in table and "test" not in table


def test_experiment_records_its_provenance(searches) -> None:  # type: ignore[no-untyped-def]
    (experiment, _), _ = searches
    provenance = load_experiment(experiment).provenance
    assert provenance["seed"] == 5
    assert "WalkForward(folds=2" in provenance["spec_source"]
    assert len(provenance["spec_sha256"]) == 64
    assert provenance["git_commit"] is None or len(provenance["git_commit"]) == 40
    for library in ("ray", "tensorflow", "keras", "pandas", "pyarrow"):
        assert provenance["versions"][library]
    state = provenance["store"]["direction"]
    assert len(state["cache_key"]) == 64 and state["partitions"]
    assert all(len(entry) == 3 for entry in state["partitions"])


def test_the_same_spec_twice_gives_identical_metrics(searches) -> None:  # type: ignore[no-untyped-def]
    (first, _), (second, _) = searches
    a = {r.identity.seed: r for r in load_results(first)}
    b = {r.identity.seed: r for r in load_results(second)}
    assert sorted(a) == sorted(b)
    for seed, result in a.items():
        other = b[seed]
        assert result.identity.hyperparameters == other.identity.hyperparameters
        assert json.dumps(result.metrics, sort_keys=True) == json.dumps(other.metrics, sort_keys=True)
        np.testing.assert_array_equal(result.curves["loss"].to_numpy(), other.curves["loss"].to_numpy())


def test_finalize_opens_the_test_set_once_and_records_each_opening(searches, minute_store) -> None:  # type: ignore[no-untyped-def]
    (experiment, _), _ = searches
    out = io.StringIO()
    opening = finalize(experiment, top=1, store=minute_store, out=out)
    record = load_experiment(experiment)
    assert opening.opening == 1 and opening.trials_tried == 2 and len(opening.trials) == 1
    assert [o["opening"] for o in record.test_openings] == [1]
    assert record.test_openings[0]["trials"] == list(opening.trials)
    results = {r.trial_id: r for r in load_results(experiment)}
    chosen = results[opening.trials[0]]
    others = [r for r in results.values() if r.trial_id != chosen.trial_id]
    best = min(results.values(), key=lambda r: r.metric("loss", "validation"))
    assert chosen.trial_id == best.trial_id  # the best by validation, never by test
    assert chosen.finalized is not None and chosen.finalized[0]["opening"] == 1
    assert not math.isnan(chosen.metric("accuracy", "test"))
    test_rows = chosen.predictions[chosen.predictions["split"] == "test"]
    last_oos = chosen.predictions[chosen.predictions["split"] == "oos"]["timestamp"].max()
    assert len(test_rows) > 0 and test_rows["timestamp"].min() > last_oos
    accuracy = float((test_rows["reality"] == test_rows["prediction"]).mean())
    assert chosen.metric("accuracy", "test") == pytest.approx(accuracy)
    assert all("test" not in r.metrics and r.finalized is None for r in others)
    assert "opened for the first time" in out.getvalue()
    # A second opening through the CLI as a user runs it, in a process of its own (the spec comes from
    # the text experiment.json recorded): as quiet as the search, TensorFlow's C++ notices dropped
    command = [sys.executable, "-m", "atlas_ray.search", "finalize", experiment, "--top", "2"]
    done = subprocess.run(
        [*command, "--store", str(minute_store.root)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "this is opening #2" in done.stdout, done.stdout
    record = load_experiment(experiment)
    assert [o["opening"] for o in record.test_openings] == [1, 2]
    assert record.test_openings[1]["top"] == 2
    twice = {r.trial_id: r for r in load_results(experiment)}[chosen.trial_id]
    assert [item["opening"] for item in twice.finalized or ()] == [1, 2]
    assert (twice.predictions["split"] == "test").sum() == len(test_rows)  # replaced, not appended
    # The report shows test figures for the finalised trial only, and names its openings.
    from atlas_ray.report._plots_card import card_split
    from atlas_ray.report._summary import summary_row

    shown = summary_row(twice)
    assert shown["finalized"] == "opening 1, opening 2" and not math.isnan(shown["test_accuracy"])
    assert card_split(twice, "validation")[0] == "oos" and card_split(twice, "test")[0] == "test"
    from atlas_ray.report._summary import integrity_facts

    facts = dict(integrity_facts(json.loads((Path(experiment) / "experiment.json").read_text())))
    assert "opening 1 at" in facts["test set"] and "opening 2 at" in facts["test set"]
    assert "repeated look" in facts["test set"] and "seed 5" in facts["provenance"]
    (other,) = others  # not finalised by the first opening
    row = summary_row(other)
    assert row["finalized"] == "" and not any(name.startswith("test_") for name in row)
    assert card_split(other, "test")[0] == "oos"  # sealed: never its test rows


def test_finalize_refuses_an_unknown_metric(searches, minute_store, capsys) -> None:  # type: ignore[no-untyped-def]
    _, (experiment, _) = searches
    code = run_cli(main, ["finalize", experiment, "--top", "1", "--metric", "sharpness"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "sharpness" in err and err.count("\n") == 1
    assert load_experiment(experiment).test_openings == ()
