"""The maths of every feature: plain numpy functions on float64 arrays, one row per bar.

Each function's docstring gives its formula. Conventions:

* Arrays are aligned to the bar grid; ``x[t]`` is the value of bar ``t``; NaN means "unknown".
* Every value depends only on the rows inside its halo (``lookback`` / ``window`` rows before,
  ``lookforward`` rows after), and is computed the same way wherever the array starts: no running sums,
  no pandas ``rolling`` (whose online algorithms carry rounding from earlier rows), column-by-column
  loops in a fixed order instead of numpy reductions whose summation order depends on array shape.
  So a value is bit-for-bit identical whether it is computed over a whole month or over a partition
  plus its halo (what makes a partitioned build equal a single-process build), and adding rows after
  ``t`` never changes it (no look-ahead).
* A window with any NaN inside gives NaN (strict): a rolling sum over a gap is not a return.

The same functions serve offline builds and live serving; nothing here knows about stores or Ray.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bar_midpoint",
    "book_strength",
    "crossing",
    "difference",
    "fair_value",
    "log_returns",
    "midpoint",
    "shift",
    "signed_arbitrage",
    "simple_returns",
    "volatility",
    "vwap",
    "window_has_nan",
    "window_sum",
]


def _as_float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def shift(values: np.ndarray, rows: int) -> np.ndarray:
    """``out[t] = values[t - rows]`` (``rows < 0`` looks forward); NaN where that row is outside."""
    values = _as_float(values)
    out = np.full(values.shape, np.nan)
    n = values.shape[0]
    if rows >= 0:
        if rows < n:
            out[rows:] = values[: n - rows]
    elif -rows < n:
        out[:rows] = values[-rows:]
    return out


def window_has_nan(values: np.ndarray, before: int, after: int = 0) -> np.ndarray:
    """``out[t]`` is True when any of ``values[t - before .. t + after]`` is NaN or outside the array.

    Counts NaNs with an integer cumulative sum, which is exact, so the answer is start-independent.
    """
    values = _as_float(values)
    n = values.shape[0]
    nan_in = np.ones(n, dtype=bool)
    first, stop = before, n - after  # the rows whose window lies inside the array
    if stop <= first:
        return nan_in
    isnan = np.isnan(values)
    if not isnan.any():
        nan_in[first:stop] = False
        return nan_in
    counts = np.empty(n + 1, dtype=np.int64)
    counts[0] = 0
    np.cumsum(isnan, dtype=np.int64, out=counts[1:])
    # rows t in [first, stop): NaNs in values[t - before .. t + after] = counts[t+after+1] - counts[t-before]
    nan_in[first:stop] = counts[first + after + 1 : stop + after + 1] > counts[first - before : stop - before]
    return nan_in


def _lagged(values: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, slice]:
    """``(later, earlier, where)``: views with ``later[i] = values[t]`` and ``earlier[i] =
    values[t - rows]`` for the rows ``t`` of ``where`` (those with both inside the array): what
    ``values`` and ``shift(values, rows)`` hold there, without the shifted copy."""
    n = values.shape[0]
    if rows >= n:
        return values[:0], values[:0], slice(0, 0)
    return values[rows:], values[: n - rows], slice(rows, n)


def log_returns(close: np.ndarray, lookback: int = 1, lookforward: int = 0) -> np.ndarray:
    """Log returns over ``lookback`` bars, or the next ``lookforward`` bars (a label).

    lookback n:    ``r[t] = sum_{k=0}^{n-1} log(c[t-k] / c[t-k-1]) = log(c[t] / c[t-n])``
    lookforward n: ``r[t] = sum_{k=1}^{n} log(c[t+k] / c[t+k-1]) = log(c[t+n] / c[t])``

    Computed as the log of the ratio of the two end closes, NaN when any close in between is NaN (as
    the sum of the one-bar returns would be).
    """
    close = _as_float(close)
    out = np.full(close.shape[0], np.nan)
    if lookforward > 0:
        later, earlier, where = _lagged(close, lookforward)
        out[: where.stop - where.start] = np.log(later / earlier)
        out[window_has_nan(close, 0, lookforward)] = np.nan
    else:
        later, earlier, where = _lagged(close, lookback)
        out[where] = np.log(later / earlier)
        out[window_has_nan(close, lookback, 0)] = np.nan
    return out


def simple_returns(close: np.ndarray, lookback: int = 1, lookforward: int = 0) -> np.ndarray:
    """Simple returns: lookback n ``c[t] / c[t-n] - 1``; lookforward n ``c[t+n] / c[t] - 1``.

    NaN when any close in the window is NaN.
    """
    close = _as_float(close)
    out = np.full(close.shape[0], np.nan)
    if lookforward > 0:
        later, earlier, where = _lagged(close, lookforward)
        out[: where.stop - where.start] = later / earlier - 1.0
        out[window_has_nan(close, 0, lookforward)] = np.nan
    else:
        later, earlier, where = _lagged(close, lookback)
        out[where] = later / earlier - 1.0
        out[window_has_nan(close, lookback, 0)] = np.nan
    return out


def difference(values: np.ndarray, lookback: int = 1, lookforward: int = 0) -> np.ndarray:
    """Change over a window: lookback n ``x[t] - x[t-n]``; lookforward n ``x[t+n] - x[t]``.

    NaN when any value in the window is NaN.
    """
    values = _as_float(values)
    out = np.full(values.shape[0], np.nan)
    if lookforward > 0:
        later, earlier, where = _lagged(values, lookforward)
        out[: where.stop - where.start] = later - earlier
        out[window_has_nan(values, 0, lookforward)] = np.nan
    else:
        later, earlier, where = _lagged(values, lookback)
        out[where] = later - earlier
        out[window_has_nan(values, lookback, 0)] = np.nan
    return out


_CHUNK = 32_768
"""Rows per block in ``_lagged_sum``: small enough that a block's columns stay in cache."""


def _lagged_sum(values: np.ndarray, window: int, centre: np.ndarray | None = None) -> np.ndarray:
    """``s[t] = sum_{k=window-1}^{0} f(x[t-k])`` for ``t >= window - 1`` (oldest term first), where
    ``f(x) = (x - centre[t])**2`` when a per-row ``centre`` is given, else ``x``.

    Works block by block on views, one column at a time: each row sees the same operations in the
    same order wherever it sits, memory stays O(rows) whatever the window."""
    n = values.shape[0]
    rows = max(n - window + 1, 0)
    total = np.zeros(rows)
    scratch = np.empty(min(_CHUNK, rows))
    for lo in range(0, rows, _CHUNK):
        hi = min(lo + _CHUNK, rows)
        block = total[lo:hi]
        square = scratch[: hi - lo]
        for k in range(window - 1, -1, -1):
            column = values[lo + window - 1 - k : hi + window - 1 - k]
            if centre is None:
                block += column
            else:
                # (x - centre)**2 into a reused buffer: the same two roundings as the expression
                np.subtract(column, centre[lo:hi], out=square)
                np.multiply(square, square, out=square)
                block += square
    return total


def window_sum(values: np.ndarray, window: int) -> np.ndarray:
    """``s[t] = sum_{k=0}^{window-1} x[t-k]``, added oldest first; NaN if any term is NaN or outside."""
    values = _as_float(values)
    out = np.full(values.shape[0], np.nan)
    out[window - 1 :] = _lagged_sum(values, window)
    return out


def volatility(close: np.ndarray, window: int) -> np.ndarray:
    """Rolling standard deviation (ddof=1) of the one-bar log returns over ``window`` bars.

    ``r[t] = log(c[t] / c[t-1])``; ``m[t] = (1/w) sum_{k=0}^{w-1} r[t-k]``;
    ``vol[t] = sqrt( sum_{k=0}^{w-1} (r[t-k] - m[t])^2 / (w - 1) )``. Needs ``c[t-w .. t]``; NaN if any
    of them is NaN. Two passes, each a fixed-order loop over the window's columns.
    """
    close = _as_float(close)
    returns = np.full(close.shape[0], np.nan)
    later, earlier, where = _lagged(close, 1)
    returns[where] = np.log(later / earlier)
    out = np.full(close.shape[0], np.nan)
    mean = _lagged_sum(returns, window) / window
    squares = _lagged_sum(returns, window, centre=mean)
    out[window - 1 :] = np.sqrt(squares / (window - 1))
    return out


def midpoint(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """``m[t] = (bid[t] + ask[t]) / 2``."""
    return (_as_float(bid) + _as_float(ask)) / 2.0


def bar_midpoint(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The bar's middle price, ``(high[t] + low[t]) / 2``: the midpoint where no quotes exist."""
    return (_as_float(high) + _as_float(low)) / 2.0


def vwap(
    bar_vwap: np.ndarray, volume: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> np.ndarray:
    """The bar's volume-weighted average price.

    ``vwap[t]`` as the store holds it where known; where the source gave none (NaN) but the bar traded
    (``volume[t] > 0``), the typical price ``(high[t] + low[t] + close[t]) / 3`` stands in; a bar with
    no volume (or a missing bar) has no VWAP (NaN).
    """
    bar_vwap = _as_float(bar_vwap)
    volume = _as_float(volume)
    typical = (_as_float(high) + _as_float(low) + _as_float(close)) / 3.0
    out = np.where(np.isnan(bar_vwap), typical, bar_vwap)
    out[~(volume > 0)] = np.nan
    return out


def book_strength(
    prices: np.ndarray, sizes: np.ndarray, slippage: float, side: str, *, quote_currency: bool = False
) -> np.ndarray:
    """Volume resting within ``slippage`` (a fraction: 0.005 = 0.5 %) of the best price.

    ``prices`` / ``sizes``: ``(snapshots, levels)``, level 0 best, NaN-padded.
    bids: ``S = sum_j size_j * [price_j >= p_0 * (1 - slippage)]``;
    asks: ``S = sum_j size_j * [price_j <= p_0 * (1 + slippage)]``;
    in quote currency (``quote_currency=True``) each term is ``price_j * size_j``.
    NaN where the side is empty (no best price). Levels are added best first.
    """
    prices = _as_float(prices)
    sizes = _as_float(sizes)
    n, levels = prices.shape
    best = prices[:, 0] if levels else np.full(n, np.nan)
    if side == "bid":
        limit = best * (1.0 - slippage)
        within = prices >= limit[:, None]
    elif side == "ask":
        limit = best * (1.0 + slippage)
        within = prices <= limit[:, None]
    else:
        raise ValueError(f"The value of `side` is {side!r}, but must be 'bid' or 'ask'.")
    terms = prices * sizes if quote_currency else sizes
    total = np.zeros(n)
    used = np.flatnonzero(within.any(axis=0))
    last = int(used[-1]) + 1 if used.size else 0
    for j in range(last):
        total = total + np.where(within[:, j], terms[:, j], 0.0)
    total[np.isnan(best)] = np.nan
    return total


def crossing(
    bid_prices: np.ndarray, bid_sizes: np.ndarray, ask_prices: np.ndarray, ask_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Revenue and quote-currency volume of buying one book's asks and selling into another's bids.

    Matches greedily, best bid against best ask, while ``bid > ask``: each step trades
    ``q = min(remaining bid size, remaining ask size)``;
    ``revenue = sum q * (bid - ask)``, ``volume = sum q * ask`` (what the buy leg costs).
    Rows: ``(snapshots, levels)`` arrays, level 0 best, NaN-padded. A row with no crossing gives 0;
    a row where either side is empty gives NaN.
    """
    bid_prices = _as_float(bid_prices)
    bid_sizes = _as_float(bid_sizes)
    ask_prices = _as_float(ask_prices)
    ask_sizes = _as_float(ask_sizes)
    n = bid_prices.shape[0]
    revenue = np.zeros(n)
    volume = np.zeros(n)
    best_bid = bid_prices[:, 0] if bid_prices.shape[1] else np.full(n, np.nan)
    best_ask = ask_prices[:, 0] if ask_prices.shape[1] else np.full(n, np.nan)
    empty = np.isnan(best_bid) | np.isnan(best_ask)
    for row in np.flatnonzero(~empty & (best_bid > best_ask)):
        revenue[row], volume[row] = _cross_one(
            bid_prices[row], bid_sizes[row], ask_prices[row], ask_sizes[row]
        )
    revenue[empty] = np.nan
    volume[empty] = np.nan
    return revenue, volume


def _cross_one(
    bid_prices: np.ndarray, bid_sizes: np.ndarray, ask_prices: np.ndarray, ask_sizes: np.ndarray
) -> tuple[float, float]:
    i = j = 0
    bid_left = float(bid_sizes[0])
    ask_left = float(ask_sizes[0])
    revenue = 0.0
    volume = 0.0
    while i < len(bid_prices) and j < len(ask_prices):
        bid, ask = float(bid_prices[i]), float(ask_prices[j])
        if not bid > ask:  # also stops at NaN padding
            break
        quantity = min(bid_left, ask_left)
        revenue += quantity * (bid - ask)
        volume += quantity * ask
        bid_left -= quantity
        ask_left -= quantity
        if bid_left <= 0.0:
            i += 1
            bid_left = float(bid_sizes[i]) if i < len(bid_sizes) else 0.0
        if ask_left <= 0.0:
            j += 1
            ask_left = float(ask_sizes[j]) if j < len(ask_sizes) else 0.0
    return revenue, volume


def signed_arbitrage(
    a: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Signed two-exchange arbitrage: ``crossing(a bids, b asks) - crossing(b bids, a asks)``.

    ``a`` and ``b`` are ``(bid_prices, bid_sizes, ask_prices, ask_sizes)``. Positive when exchange a's
    bids exceed exchange b's asks (buy on b, sell on a), negative the other way. Returns
    ``(revenue, volume)`` in quote currency.
    """
    rev_ab, vol_ab = crossing(a[0], a[1], b[2], b[3])
    rev_ba, vol_ba = crossing(b[0], b[1], a[2], a[3])
    return rev_ab - rev_ba, vol_ab - vol_ba


def fair_value(prices: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """Weighted mean of several exchanges' prices: ``fv[t] = sum_i w_i[t] p_i[t] / sum_i w_i[t]``.

    NaN when any price or weight is NaN, or when the weights add up to zero. Terms are added in the
    order given.
    """
    numerator = np.zeros(_as_float(prices[0]).shape[0])
    denominator = np.zeros_like(numerator)
    for price, weight in zip(prices, weights, strict=True):
        numerator = numerator + _as_float(weight) * _as_float(price)
        denominator = denominator + _as_float(weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = numerator / denominator
    out[~(denominator > 0)] = np.nan
    return out
