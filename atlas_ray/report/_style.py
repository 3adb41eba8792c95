"""Figure plumbing shared by the plot families: headless Agg figures, not registered with pyplot.

Figures are ``matplotlib.figure.Figure`` objects with an Agg canvas, so building them needs no
display, leaks nothing into pyplot's global state (nothing to close), and a notebook shows them as
usual. ``render_png`` turns one into PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg", force=False)

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

__all__ = [
    "CLASS_COLOURS", "DPI", "class_colour", "empty_axes", "grid", "new_figure", "plain_times", "render_png",
    "trial_title",
]

DPI = 80
CLASS_COLOURS: Sequence[str] = ("#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e")


def new_figure(width: float, height: float) -> Figure:
    """A blank Agg figure of ``width`` x ``height`` inches. Layouts are set by hand (gridspec margins):
    matplotlib's constrained layout costs more than drawing the figure."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def class_colour(index: int, n_classes: int) -> str:
    """Red for the lowest class, green for the highest, grey between (down / flat / up)."""
    if n_classes == 2:
        return ("#d62728", "#2ca02c")[index]
    if n_classes == 3:
        return CLASS_COLOURS[index]
    return f"C{index % 10}"


def empty_axes(ax: Axes, message: str) -> None:
    """Mark an axes that has nothing to draw, saying why."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4",
            wrap=True)


def render_png(figure: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def trial_title(trial_id: str, unit: str, model: str, hyperparameters: str, extra: str = "") -> str:
    text = f"{trial_id}  ·  {unit} / {model}"
    if hyperparameters:
        text += f"  ·  {hyperparameters}"
    if extra:
        text += f"  ·  {extra}"
    return text


def grid(
    figure: Figure,
    rows: int,
    cols: int,
    *,
    left: float = 0.75,
    right: float = 0.25,
    top: float = 0.6,
    bottom: float = 0.6,
    hspace: float = 0.45,
    wspace: float = 0.3,
) -> GridSpec:
    """A gridspec with margins in inches (``left``, ``right``, ``top``, ``bottom``) and gaps as fractions
    of the mean axes size, the hand-set layout every figure uses."""
    width, height = figure.get_size_inches()
    return figure.add_gridspec(
        rows, cols, left=min(left / width, 0.6), right=1 - right / width, top=1 - top / height,
        bottom=min(bottom / height, 0.5), hspace=hspace, wspace=wspace,
    )


def plain_times(index: pd.DatetimeIndex | pd.Index) -> np.ndarray:
    """UTC times as naive ``datetime64[ns]``: matplotlib converts those in one vectorised step, while a
    tz-aware index goes through a Python loop over Timestamps (seconds for a few thousand rows)."""
    times = pd.DatetimeIndex(index)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.to_numpy()
