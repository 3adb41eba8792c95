"""A unit's quoted spread (``Costs(spread_bps=QUOTED)``), measured once from the store.

``resolve_costs``: the unit's cost model with ``spread_bps`` = half the median quoted spread, in bps
of the mid (``atlas_ray.backtest.half_spread_bps``), of the store's ``quotes`` (bid_price / ask_price)
of the market the featureset's label is on (the first label, the one ``prepare`` uses: its first data
requirement's exchange and pair), over ``[unit.start, first test row)``: the unit's range before its
sealed test block, so the figure never sees the test rows. A stated spread is returned as it is.

``check_quotes`` (the spec check, before Ray starts): the store holds quotes for that exchange and pair
on a day of the unit's range. Where it does not, or where none of them lie before the test block (seen
once the featureset is built and split, still before any trial starts), the unit is refused with one
line naming the unit, the exchange and the field (``costs.spread_bps``). Decision: no silent fallback to
a stated figure; a user without quotes states the spread (``spread_bps=0.5``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from atlas_ray.backtest import QUOTED, Costs, half_spread_bps
from atlas_ray.errors import SpecError
from atlas_ray.featurestore import FoldedSet, PreparedSet
from atlas_ray.search._spec import WorkUnit

__all__ = ["check_quotes", "quoted_market", "resolve_costs", "sealed_start"]

_FIELD = "costs.spread_bps"


def quoted_market(unit: WorkUnit) -> tuple[str, str]:
    """The exchange and pair whose quotes price the unit's spread: those of its first label."""
    labels = tuple(getattr(unit.featureset, "labels", ()))
    needs = labels[0].requirements() if labels and hasattr(labels[0], "requirements") else ()
    if not needs:
        raise SpecError(
            f"unit `{unit.name}`, field `{_FIELD}`: the value is {QUOTED!r}, but the featureset's label "
            "names no exchange to read quotes from; state the spread in bps instead."
        )
    return str(needs[0].exchange), str(needs[0].pair)


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _missing(unit: WorkUnit, exchange: str, pair: str, store: Any, start: Any, end: Any) -> SpecError:
    return SpecError(
        f"unit `{unit.name}`, field `{_FIELD}`: the value is {QUOTED!r}, but the store at "
        f"{getattr(store, 'root', store)} holds no quotes for {exchange} {pair} in [{start}, {end}); "
        "ingest its quotes or state the spread in bps."
    )


def check_quotes(unit: WorkUnit, store: Any) -> None:
    """Refuse a quoted unit whose store holds no quotes of its market on a day of its range."""
    if not isinstance(unit.costs, Costs) or not unit.costs.quoted:
        return
    exchange, pair = quoted_market(unit)
    first, last = _utc(unit.start), _utc(unit.end) - pd.Timedelta(1, "ns")
    days = [d for d in store.dates(exchange, pair, "quotes") if first.strftime("%Y-%m-%d") <= d]
    if not [d for d in days if d <= last.strftime("%Y-%m-%d")]:
        raise _missing(unit, exchange, pair, store, unit.start, unit.end)


def sealed_start(prepared: PreparedSet | FoldedSet) -> pd.Timestamp | None:
    """The time of the sealed test block's first row (None without test rows)."""
    index = prepared.test.index
    return pd.Timestamp(index.min()) if len(index) else None


def resolve_costs(unit: WorkUnit, prepared: PreparedSet | FoldedSet, store: Any) -> Costs:
    """The unit's cost model with its quoted spread measured (see the module docstring)."""
    costs = unit.costs
    if not costs.quoted:
        return costs
    exchange, pair = quoted_market(unit)
    end = sealed_start(prepared)
    end = _utc(unit.end) if end is None else min(_utc(end), _utc(unit.end))
    quotes = (
        store.read(exchange, pair, "quotes", unit.start, end, columns=["bid_price", "ask_price"])
        if store.has(exchange, pair, "quotes")
        else pd.DataFrame({"bid_price": [], "ask_price": []})
    )
    figure = half_spread_bps(quotes["bid_price"].to_numpy(), quotes["ask_price"].to_numpy())
    if math.isnan(figure):
        raise _missing(unit, exchange, pair, store, unit.start, f"{end}, the test block's start")
    return costs.resolved(figure)
