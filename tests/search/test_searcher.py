"""The searcher a WorkSpec chooses: Optuna's TPE walks the planned trials in order (seeds, constants and
grid points as planned), searches list-valued choices by index, learns from the results it is told,
draws the same values from the same seed, and runs a real search under ASHA, recorded in
experiment.json; what it cannot search is refused in one line."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest
from ray import tune

from atlas_ray.errors import SpecError
from atlas_ray.search import ModelSpec, Searcher, load_experiment, load_results, run
from atlas_ray.search._searcher import PlanSearcher, check_space
from tests.search import search_specs

optuna = pytest.importorskip("optuna")


def variants(n: int) -> list[dict[str, Any]]:
    hp = {
        "hidden_units": tune.choice([[3], [6, 3]]),
        "learning_rate": tune.loguniform(1e-4, 1e-1),
        "batch_size": 256,
        "nested": {"units": tune.randint(1, 5), "kind": "a"},
    }
    return [{"unit": "u", "model": "dnn", "sample": i, "seed": 100 + i, "hp": hp} for i in range(n)]


def drawn(searcher: PlanSearcher, n: int, score: Any = None) -> list[dict[str, Any]]:
    found = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        found.append(config["variant"])
        if score is not None:
            searcher.on_trial_complete(f"t{i}", {"val_loss": score(config["variant"]["hp"])})
    return found


def test_plan_order_seeds_and_constants_are_kept() -> None:
    searcher = PlanSearcher(variants(4), metric="val_loss", mode="min", seed=3)
    found = drawn(searcher, 4)
    assert [v["seed"] for v in found] == [100, 101, 102, 103]
    assert [v["sample"] for v in found] == [0, 1, 2, 3]
    for variant in found:
        hp = variant["hp"]
        assert hp["hidden_units"] in ([3], [6, 3])
        assert 1e-4 <= hp["learning_rate"] <= 1e-1
        assert hp["batch_size"] == 256
        assert hp["nested"]["kind"] == "a" and 1 <= hp["nested"]["units"] <= 4
    assert searcher.suggest("t4") == PlanSearcher.FINISHED


def test_same_seed_same_draws_and_results_steer_the_study() -> None:
    def score(hp: dict[str, Any]) -> float:
        return abs(hp["learning_rate"] - 1e-2) / 1e-2 + (0.0 if hp["hidden_units"] == [6, 3] else 1.0)

    first = drawn(PlanSearcher(variants(30), metric="val_loss", mode="min", seed=5), 30, score)
    again = drawn(PlanSearcher(variants(30), metric="val_loss", mode="min", seed=5), 30, score)
    assert first == again
    # TPE's first 10 draws are random; afterwards it draws near what scored well
    early = sum(v["hp"]["hidden_units"] == [6, 3] for v in first[:10]) / 10
    late = sum(v["hp"]["hidden_units"] == [6, 3] for v in first[-10:]) / 10
    assert late > early or late == 1.0


def test_what_optuna_cannot_search_is_refused() -> None:
    space = {"learning_rate": tune.sample_from(lambda _: 1e-3)}
    with pytest.raises(SpecError, match=r"unit `u`, model `m`, parameter `learning_rate`: tune.sample_from"):
        check_space(Searcher.OPTUNA, space, "unit `u`, model `m`")
    check_space(Searcher.RANDOM, space, "unit `u`, model `m`")
    with pytest.raises(SpecError, match=r"`searcher` is 'bohb', but must be one of 'random', 'optuna'"):
        replace(search_specs.spec("s", [search_specs.small_dnn()]), searcher="bohb")  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_real_search_with_tpe_under_asha(ray_cluster: None, minute_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ModelSpec(
        "dnn",
        "dnn",
        {"hidden_units": tune.choice([[3], [6]]), "learning_rate": tune.loguniform(1e-3, 1e-2)},
        num_samples=3,
    )
    spec = replace(search_specs.spec("tpe", [model], max_t=1), searcher="optuna")
    assert spec.searcher is Searcher.OPTUNA
    experiment = run(spec, storage=str(tmp_path), store=minute_store, spec_path="tpe.py", out=io.StringIO())
    record = load_experiment(experiment)
    assert record.searcher == "optuna" and record.status == "finished"
    results = load_results(experiment)
    assert len(results) == 3 and sorted(r.identity.seed for r in results) == [7, 8, 9]
    for result in results:
        hp = result.identity.hyperparameters
        assert hp["hidden_units"] in ([3], [6]) and 1e-3 <= hp["learning_rate"] <= 1e-2


def test_a_saved_searcher_continues_where_it_stopped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def score(hp: dict[str, Any]) -> float:
        return hp["learning_rate"]

    whole = drawn(PlanSearcher(variants(14), metric="val_loss", mode="min", seed=9), 14, score)
    first = PlanSearcher(variants(14), metric="val_loss", mode="min", seed=9)
    part = drawn(first, 12, score)
    first.save(str(tmp_path / "searcher.pkl"))
    second = PlanSearcher(variants(14), metric="val_loss", mode="min", seed=0)
    second.restore(str(tmp_path / "searcher.pkl"))
    rest = []
    for i in range(12, 14):
        config = second.suggest(f"t{i}")
        rest.append(config["variant"])
        second.on_trial_complete(f"t{i}", {"val_loss": score(config["variant"]["hp"])})
    assert part + rest == whole
