"""keras-tuner ``HyperModel`` -> Ray Tune search space, and sampled values -> the HyperModel's model.

A user's existing keras-tuner code runs unchanged: ``space_from_hypermodel(hm)`` discovers the
hyperparameters ``hm.build(hp)`` declares by building it with a recording
``keras_tuner.HyperParameters`` (as keras-tuner's own tuners do, ``declare_hyperparameters`` first),
and turns each into a Ray Tune domain:

==============================================  =================================================
keras-tuner                                     Ray Tune
==============================================  =================================================
``Int(lo, hi)`` / ``step=1``                    ``tune.randint(lo, hi + 1)`` (``hi`` included)
``Int(lo, hi, step=s)``, ``lo % s == 0``        ``tune.qrandint(lo, hi, s)``
``Int(lo, hi, sampling="log")``                 ``tune.lograndint(lo, hi + 1)``
``Float(lo, hi)``                               ``tune.uniform(lo, hi)``
``Float(lo, hi, sampling="log")``               ``tune.loguniform(lo, hi)``
any other stepped ``Int`` / ``Float``           ``tune.choice`` of keras-tuner's own values
``Choice(name, values)``                        ``tune.choice(values)``
``Boolean(name)``                               ``tune.choice([True, False])``
``Fixed(name, value)``                          ``value`` (a constant)
==============================================  =================================================

``sampling="reverse_log"`` without a step has no Ray Tune counterpart and is refused (``SpecError``);
with a step it becomes a choice of its values.

``hypermodel_builder(hm)`` returns ``build(config) -> keras.Model`` that calls ``hm.build(hp)`` with a
fresh ``keras_tuner.HyperParameters`` whose ``values`` are exactly the sampled values of the
HyperModel's hyperparameters (the runner's own keys, ``learning_rate`` / ``batch_size`` / ``seed``,
are left out unless the HyperModel declares them). ``hypermodel_zoo_model(hm)`` wraps it all as a
``ZooModel`` whose parameters are the declared hyperparameters (with their ranges) plus the common
ones; a model the HyperModel did not compile is compiled for the task.

What is discovered, and what is not:

- Conditional scopes (``hp.conditional_scope`` or ``parent_name`` / ``parent_values``) are supported:
  like keras-tuner, discovery rebuilds with each never-active scope's parent set to a value that
  activates it. Ray samples every hyperparameter independently; when the model is built, one whose
  condition is false is inactive and ``hp.Int(...)`` returns ``None`` to the HyperModel, exactly as in
  keras-tuner, so the sampled value is ignored.
- Hyperparameters whose existence depends on another's value without a conditional scope (``for i in
  range(hp.Int("layers", 1, 3)): hp.Int(f"units_{i}", ...)``, ``if hp.Boolean("x"): hp.Float(...)``)
  are found by also building with every numeric hyperparameter at its maximum and every Boolean
  true, repeated until nothing new appears. One that appears only for a particular ``Choice`` value
  needs a conditional scope to be found.
- A name declared twice with different definitions (under different conditions) cannot be one flat
  Ray Tune key and is refused; hyperparameters declared in ``HyperModel.fit`` are not discovered
  (the runner trains with its own fit): declare them in ``build``.
- ``name_scope`` prefixes become part of the key (``"block/units"``).
- Discovery runs once per HyperModel object (cached on it): a HyperModel whose declarations change
  after that needs a fresh instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from atlas_ray.errors import SpecError
from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import (
    COMMON_PARAMETERS,
    ParameterKind,
    ParameterRule,
    ZooModel,
    bool_rule,
    choice_rule,
    float_rule,
)

__all__ = [
    "hyperparameters_for",
    "hypermodel_builder",
    "hypermodel_zoo_model",
    "space_from_hypermodel",
]

MAX_DISCOVERY_BUILDS = 32


def space_from_hypermodel(hm: Any) -> dict[str, Any]:
    """The Ray Tune search space of the hyperparameters ``hm`` declares (see the module docstring)."""
    return _Recording(hm).ray_space()


def hypermodel_builder(hm: Any) -> Callable[[Mapping[str, Any]], Any]:
    """``build(config) -> keras.Model``: ``hm.build`` with exactly the sampled values."""
    return _Recording(hm).builder()


def hyperparameters_for(hm: Any, config: Mapping[str, Any]) -> Any:
    """A fresh ``keras_tuner.HyperParameters`` holding the sampled values of ``hm``'s
    hyperparameters from ``config`` (for ``hm.build(hp)``, or ``hm.fit(hp, model, ...)``)."""
    return _Recording(hm).hyperparameters(config)


def hypermodel_zoo_model(hm: Any, name: str | None = None) -> ZooModel:
    """``hm`` as a ``ZooModel``: its declared hyperparameters (with their ranges) and the common ones
    as parameters, ``space_from_hypermodel`` as the default space, every task supported. The
    hyperparameters are discovered here, once; the ZooModel carries them to Ray's workers."""
    recording = _Recording(hm)
    model_name = name or _label(hm)
    parameters: dict[str, ParameterRule] = dict(COMMON_PARAMETERS)
    for hp in recording.space():
        parameters[hp.name] = _rule(hp)
    builder = recording.builder()

    def build(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], task: Task, n_classes: int,
        train_X: np.ndarray,
    ) -> Any:
        from atlas_ray.search._models._common import compile_if_needed  # imports Keras

        return compile_if_needed(builder(config), config, model_name, task, n_classes)

    return ZooModel(
        name=model_name,
        doc=(type(hm).__doc__ or f"keras-tuner HyperModel {type(hm).__name__}").strip(),
        windowed=False,
        tasks=frozenset(Task),
        parameters=parameters,
        space=recording.ray_space,
        builder=build,
    )


class _Recording:
    """The hyperparameters a HyperModel declares, discovered on first use and then kept.

    The discovered list is also cached on the HyperModel itself (attribute ``CACHE``, plain
    keras-tuner objects), so a HyperModel validated in the driver and shipped to Ray's workers is not
    rebuilt for discovery in every trial, and every trial sees the space the driver validated.
    """

    CACHE = "_atlas_ray_hyperparameters"

    def __init__(self, hm: Any) -> None:
        _require_hypermodel(hm)
        self._hm = hm
        self._space: list[Any] | None = getattr(hm, "__dict__", {}).get(self.CACHE)

    def space(self) -> list[Any]:
        """One ``HyperParameter`` per name, in declaration order."""
        if self._space is None:
            self._space = _unique_by_name(_discover(self._hm), _label(self._hm))
            if hasattr(self._hm, "__dict__"):
                self._hm.__dict__[self.CACHE] = self._space
        return list(self._space)

    def ray_space(self) -> dict[str, Any]:
        return {hp.name: _domain(hp, _label(self._hm)) for hp in self.space()}

    def hyperparameters(self, config: Mapping[str, Any]) -> Any:
        import keras_tuner

        names = {hp.name for hp in self.space()}
        hp = keras_tuner.HyperParameters()
        hp.values = {
            key: _plain(value)
            for key, value in config.items()
            if key in names or key not in COMMON_PARAMETERS
        }
        return hp

    def builder(self) -> Callable[[Mapping[str, Any]], Any]:
        self.space()  # discover now, so a pickled builder carries the space
        hm = self._hm

        def build(config: Mapping[str, Any]) -> Any:
            return hm.build(self.hyperparameters(config))

        return build


def _discover(hm: Any) -> list[Any]:
    """Every hyperparameter ``hm.build`` declares: a default build, then keras-tuner's activation of
    never-active conditional scopes, then builds at the maxima until nothing new appears."""
    import keras_tuner

    master = keras_tuner.HyperParameters()
    hm.declare_hyperparameters(master)
    hp = master.copy()
    try:
        hm.build(hp)
    except Exception as error:
        raise SpecError(
            f"HyperModel `{_label(hm)}`: build(hp) raised {type(error).__name__} while its "
            f"hyperparameters were recorded with their defaults: {error}"
        ) from error
    master.merge(hp.space, overwrite=False)
    once_active: list[Any] = []
    pending: list[Any] = []
    _update_scopes(hp, once_active, pending)
    maximal_seen: set[tuple[str, ...]] = set()
    for _ in range(MAX_DISCOVERY_BUILDS - 1):
        if pending:
            values = {condition.name: condition.values[0] for condition in pending.pop(0)}
        else:
            names = tuple(sorted(parameter.name for parameter in master.space))
            if names in maximal_seen:
                break
            maximal_seen.add(names)
            values = _maximal_values(master)
        hp = master.copy()
        hp.values.update(values)
        _fill_defaults(hp)
        try:
            hm.build(hp)
        except Exception:  # an exploratory build may be invalid (too large, ...): skip it
            continue
        master.merge(hp.space, overwrite=False)
        _update_scopes(hp, once_active, pending)
    return list(master.space)


def _update_scopes(hp: Any, once_active: list[Any], pending: list[Any]) -> None:
    """keras-tuner's bookkeeping: scopes never active so far wait in ``pending``."""
    for scope in hp.active_scopes:
        if scope not in once_active:
            once_active.append(list(scope))
        if scope in pending:
            pending.remove(scope)
    for scope in hp.inactive_scopes:
        if scope not in once_active and scope not in pending:
            pending.append(list(scope))


def _maximal_values(space: Any) -> dict[str, Any]:
    types = _types()
    values: dict[str, Any] = {}
    for hp in space.space:
        if isinstance(hp, types.Int | types.Float):
            values[hp.name] = hp.max_value
        elif isinstance(hp, types.Boolean):
            values[hp.name] = True
    return values


def _fill_defaults(hp: Any) -> None:
    for parameter in hp.space:
        if hp.is_active(parameter) and parameter.name not in hp.values:
            hp.values[parameter.name] = parameter.default


def _unique_by_name(space: list[Any], label: str) -> list[Any]:
    unique: dict[str, Any] = {}
    for hp in space:
        known = unique.get(hp.name)
        if known is None:
            unique[hp.name] = hp
        elif _definition(known) != _definition(hp):
            raise SpecError(
                f"HyperModel `{label}`: hyperparameter `{hp.name}` is declared twice with different "
                f"definitions ({known!r} and {hp!r}); a Ray Tune space needs one per name: rename one"
            )
    return list(unique.values())


def _definition(hp: Any) -> dict[str, Any]:
    config = dict(hp.get_config())
    config.pop("conditions", None)
    return config


def _domain(hp: Any, label: str) -> Any:
    from ray import tune

    types = _types()
    if isinstance(hp, types.Fixed):
        return hp.value
    if isinstance(hp, types.Boolean):
        return tune.choice([True, False])
    if isinstance(hp, types.Choice):
        return tune.choice(list(hp.values))
    low, high, step, sampling = hp.min_value, hp.max_value, hp.step, hp.sampling
    if sampling == "reverse_log" and step is None:
        raise SpecError(
            f"HyperModel `{label}`, hyperparameter `{hp.name}`: sampling='reverse_log' without a step "
            "has no Ray Tune counterpart: use sampling='log', or give a step"
        )
    if isinstance(hp, types.Int):
        if sampling == "linear" and step in (None, 1):
            return tune.randint(low, high + 1)
        if sampling == "linear" and low % step == 0:
            return tune.qrandint(low, high, step)
        if sampling == "log" and step is None:
            return tune.lograndint(low, high + 1)
    elif step is None:
        return tune.uniform(low, high) if sampling == "linear" else tune.loguniform(low, high)
    return tune.choice([_plain(value) for value in hp.values])


def _rule(hp: Any) -> ParameterRule:
    types = _types()
    if isinstance(hp, types.Fixed):
        return choice_rule(hp.value, (hp.value,), doc="keras-tuner Fixed")
    if isinstance(hp, types.Boolean):
        return bool_rule(bool(hp.default), doc="keras-tuner Boolean")
    if isinstance(hp, types.Choice):
        return choice_rule(hp.default, hp.values, doc="keras-tuner Choice")
    if isinstance(hp, types.Int):
        return ParameterRule(
            ParameterKind.INT, hp.default, "keras-tuner Int", low=hp.min_value, high=hp.max_value
        )
    low, high = float(hp.min_value), float(hp.max_value)
    tolerance = 1e-9 * max(1.0, abs(high))  # quantised samples may land a rounding error outside
    return float_rule(hp.default, low - tolerance, high + tolerance, doc="keras-tuner Float")


def _types() -> Any:
    from keras_tuner.src.engine.hyperparameters import hp_types

    return hp_types


def _require_hypermodel(hm: Any) -> None:
    import keras_tuner

    if not isinstance(hm, keras_tuner.HyperModel):
        raise SpecError(f"model is a {type(hm).__name__}, but must be a keras_tuner.HyperModel here")


def _label(hm: Any) -> str:
    return str(getattr(hm, "name", None) or type(hm).__name__)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
