"""Figure plumbing shared by the plot families: headless Agg figures, not registered with pyplot.

Figures are ``matplotlib.figure.Figure`` objects with an Agg canvas, so building them needs no
display, leaks nothing into pyplot's global state (nothing to close), and a notebook shows them as
usual. ``render_png`` turns one into PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["CLASS_COLOURS", "DPI", "empty_axes", "new_figure", "render_png", "trial_title"]

DPI = 80
CLASS_COLOURS: Sequence[str] = ("#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e")


def new_figure(width: float, height: float) -> Figure:
    """A blank Agg figure of ``width`` x ``height`` inches with a constrained layout."""
    figure = Figure(figsize=(width, height), layout="constrained")
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
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def trial_title(trial_id: str, unit: str, model: str, hyperparameters: str, extra: str = "") -> str:
    text = f"{trial_id}  ·  {unit} / {model}"
    if hyperparameters:
        text += f"  ·  {hyperparameters}"
    if extra:
        text += f"  ·  {extra}"
    return text
