"""How a search draws each trial's hyperparameters: ``Searcher.RANDOM`` (the default) or
``Searcher.OPTUNA`` (Optuna's TPE through Ray Tune's ``OptunaSearch``), always under ASHA.

``RANDOM``: the runner hands Ray Tune every planned trial as a grid of variants and Tune's variant
generator draws each variant's domains from a random state seeded with the spec's seed.

``OPTUNA``: ``PlanSearcher`` walks the same plan (unit, model, grid point, sample; the same seeds) in
order and asks, for each planned trial, a TPE study of its own (unit, model) for the values of the
model's domains (Ray Tune domains converted by ``OptunaSearch``; its sampler seeded from the spec's
seed); constants and grid points are kept as planned. Every epoch's result is reported to that
study and a trial's last result (at ASHA's stop, or ``max_t``) completes it, so later trials of the
model are drawn where earlier ones did well. A categorical domain whose choices are not plain values
(lists such as ``hidden_units``) is searched by index. ``tune.sample_from`` cannot be converted and is
refused (``check_space``). The searcher's state travels in Tune's experiment checkpoint (``save`` /
``restore``), so a continued experiment keeps its studies.
"""

from __future__ import annotations

import enum
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from atlas_ray.errors import SpecError

__all__ = ["PlanSearcher", "Searcher", "check_space", "plan_searcher"]

_PLAIN = (str, int, float, bool, type(None))


class Searcher(enum.Enum):
    """Which searcher draws the hyperparameters (ASHA schedules either)."""

    RANDOM = "random"
    OPTUNA = "optuna"


def check_space(searcher: Searcher, space: Mapping[str, Any], where: str) -> None:
    """``SpecError`` for what ``searcher`` cannot search in ``space`` (a model's full space)."""
    if searcher is not Searcher.OPTUNA:
        return
    for key, value in _flatten(space).items():
        if type(value).__module__.startswith("ray.tune.search") and type(value).__name__ == "Function":
            raise SpecError(
                f"{where}, parameter `{key}`: tune.sample_from cannot be searched by the optuna searcher; "
                "use a tune domain (tune.choice, tune.uniform, tune.loguniform, tune.randint, ...) or "
                "searcher=Searcher.RANDOM"
            )
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SpecError(
            f"{where}: searcher `optuna` needs Optuna, which is not installed (pip install optuna, or "
            "atlas_ray's `bench` extra)"
        ) from None


def _flatten(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in space.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and set(value) != {"grid_search"}:
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def _is_domain(value: Any) -> bool:
    return type(value).__module__.startswith("ray.tune.search")


def _searchable(flat: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The domains of ``flat`` as Optuna can take them, and for each categorical searched by index its
    choices."""
    from ray import tune
    from ray.tune.search.sample import Categorical

    domains: dict[str, Any] = {}
    by_index: dict[str, list[Any]] = {}
    for key, value in flat.items():
        if not _is_domain(value):
            continue
        if isinstance(value, Categorical) and not all(isinstance(c, _PLAIN) for c in value.categories):
            by_index[key] = list(value.categories)
            domains[key] = tune.choice(list(range(len(value.categories))))
        else:
            domains[key] = value
    return domains, by_index


def _name(position: int) -> str:
    return f"p{position}"


def _searcher_base() -> type:
    from ray.tune.search import Searcher as TuneSearcher

    return TuneSearcher


class PlanSearcher(_searcher_base()):  # type: ignore[misc]
    """Ray Tune ``Searcher`` giving the planned trials in order, each model's domains drawn by its own
    Optuna TPE study (see the module docstring)."""

    def __init__(self, variants: Sequence[Mapping[str, Any]], *, metric: str, mode: str, seed: int) -> None:
        super().__init__(metric=metric, mode=mode)
        self.variants = [dict(variant) for variant in variants]
        self.seed = int(seed)
        self.position = 0
        self.studies: dict[tuple[str, ...], Any] = {}
        self.owners: dict[str, tuple[str, ...]] = {}

    def _study(self, variant: Mapping[str, Any], domains: Mapping[str, Any]) -> tuple[tuple[str, ...], Any]:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        key = (str(variant["unit"]), str(variant["model"]), *sorted(domains))
        if key not in self.studies:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            sampler = optuna.samplers.TPESampler(seed=self.seed + len(self.studies))
            # Optuna's names are p0, p1, ... in the order of the sorted parameter paths (Tune's
            # conversion refuses the "/" of nested paths)
            space = OptunaSearch.convert_search_space({_name(i): domains[k] for i, k in enumerate(key[2:])})
            self.studies[key] = OptunaSearch(
                space=space, metric=self.metric, mode=self.mode, sampler=sampler
            )
        return key, self.studies[key]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.position >= len(self.variants):
            return self.FINISHED  # type: ignore[no-any-return]
        variant = self.variants[self.position]
        self.position += 1
        flat = _flatten(variant["hp"])
        domains, by_index = _searchable(flat)
        values = {key: value for key, value in flat.items() if not _is_domain(value)}
        if domains:
            key, study = self._study(variant, domains)
            self.owners[trial_id] = key
            drawn = study.suggest(trial_id) or {}
            for i, name in enumerate(key[2:]):
                value = drawn[_name(i)]
                values[name] = by_index[name][int(value)] if name in by_index else value
        return {"variant": {**variant, "hp": _unflatten(values)}}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        key = self.owners.get(trial_id)
        if key is not None and self.metric in result:
            self.studies[key].on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        key = self.owners.get(trial_id)
        if key is not None:
            self.studies[key].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        # Tune's Searcher contract, as Tune's own OptunaSearch keeps it: the TPE studies go into Tune's
        # experiment state, which Tune itself pickles and restores on --resume. It is never read from a
        # ResultsObject (those stay JSON and parquet) and never from a harvested copy.
        with open(checkpoint_path, "wb") as stream:
            pickle.dump(self.__dict__, stream)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as stream:
            self.__dict__.update(pickle.load(stream))


def plan_searcher(
    searcher: Searcher, variants: Sequence[Mapping[str, Any]], *, metric: str, mode: str, seed: int
) -> PlanSearcher | None:
    """The Tune searcher for ``searcher`` (None for RANDOM: the runner's variant grid)."""
    if searcher is Searcher.RANDOM:
        return None
    return PlanSearcher(variants, metric=metric, mode=mode, seed=seed)
