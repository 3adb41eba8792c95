"""Figure plumbing shared by the plot families: headless Agg figures, not registered with pyplot.

Figures are ``matplotlib.figure.Figure`` objects with an Agg canvas, so building them needs no
display, leaks nothing into pyplot's global state (nothing to close), and a notebook shows them as
usual. ``render_png`` turns one into PNG bytes; ``render_checked`` also says which texts do not fit.

Text that fits: ``fit_texts`` wraps any text (a title, a suptitle) that runs past the figure's left
or right edge, at save time, and ``overflowing_texts`` lists every drawn text whose rendered bounding
box (its window extent) is not wholly inside the figure, the check the report and its tests run.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg", force=False)

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.text import Text
from matplotlib.transforms import BboxBase

__all__ = [
    "CLASS_COLOURS", "DPI", "class_colour", "empty_axes", "fit_texts", "grid", "new_figure",
    "overflowing_texts", "plain_times", "render_checked", "render_png", "trial_title",
]

DPI = 80
CLASS_COLOURS: Sequence[str] = ("#d62728", "#7f7f7f", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e")


def new_figure(width: float, height: float) -> Figure:
    """A blank Agg figure of ``width`` x ``height`` inches. Layouts are set by hand (gridspec margins):
    matplotlib's constrained layout costs more than drawing the figure."""
    figure = Figure(figsize=(width, height), dpi=DPI)
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
    """The figure as PNG bytes, texts that would run past its sides wrapped first (``fit_texts``)."""
    fit_texts(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def render_checked(figure: Figure, dpi: int = DPI) -> tuple[bytes, list[str]]:
    """``render_png`` and the texts that still do not fit in the figure (``overflowing_texts``)."""
    png = render_png(figure, dpi)
    if dpi != figure.dpi:  # the layout savefig just made is at ``dpi``: check the figure's own
        figure.draw_without_rendering()
    return png, _overflows(figure)


#: How far (pixels) a text's bounding box may pass the figure's edge and still count as inside: the
#: anti-aliasing of a glyph's edge, not a visible cut.
_EDGE_TOLERANCE = 1.0


def _tick_labels(figure: Figure) -> set[int]:
    """``id`` of every tick label and axis offset text (checked per axis, not one by one: matplotlib
    keeps labels of ticks outside the view that it never draws)."""
    ids: set[int] = set()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in [*axis.majorTicks, *axis.minorTicks]:
                ids.update((id(tick.label1), id(tick.label2)))
            ids.update((id(axis.label), id(axis.offsetText)))
    return ids


def _outside(box: BboxBase, frame: BboxBase, tolerance: float = _EDGE_TOLERANCE) -> bool:
    return bool(box.x0 < frame.x0 - tolerance or box.y0 < frame.y0 - tolerance
                or box.x1 > frame.x1 + tolerance or box.y1 > frame.y1 + tolerance)


def _drawn_texts(figure: Figure) -> list[Text]:
    """The visible, non-empty texts matplotlib lays out itself (not wrapped ones: ``wrap=True`` text is
    wrapped to the figure by matplotlib when drawn), tick and axis labels left out."""
    ticks = _tick_labels(figure)
    found = figure.findobj(lambda artist: isinstance(artist, Text))
    return [t for t in found if isinstance(t, Text) and id(t) not in ticks and t.get_visible()
            and t.get_text().strip() and not t.get_wrap()]


def _axes_name(ax: Axes, index: int) -> str:
    title = next((t for t in (ax.get_title(loc=loc) for loc in ("left", "center", "right")) if t),
                 "")
    return f"axes {index}" + (f" ({title[:40]!r})" if title else "")


def overflowing_texts(figure: Figure) -> list[str]:
    """Every drawn text of ``figure`` whose rendered bounding box is not wholly inside the figure (a
    clipped title, a tick label cut at the edge), one line each; ``[]`` when everything fits. Lays the
    figure out first (``draw_without_rendering``)."""
    figure.draw_without_rendering()
    return _overflows(figure)


def _overflows(figure: Figure) -> list[str]:
    """``overflowing_texts`` of a figure laid out at its own dpi just before."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = figure.bbox
    out = []
    for text in _drawn_texts(figure):
        extent = text.get_window_extent(renderer)
        if _outside(extent, frame):
            box = extent
            out.append(f"text {text.get_text()[:60]!r} spans x {box.x0:.0f}..{box.x1:.0f}, y {box.y0:.0f}.."
                       f"{box.y1:.0f}; the figure is {frame.width:.0f} x {frame.height:.0f} pixels")
    for i, ax in enumerate(figure.axes):
        if not ax.get_visible():
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not axis.get_visible():
                continue
            tight = axis.get_tightbbox(renderer)
            if tight is not None and _outside(tight, frame):
                out.append(f"{name} tick or axis labels of {_axes_name(ax, i)} pass the figure's edge")
    return out


def fit_texts(figure: Figure, attempts: int = 3) -> None:
    """Wrap every text that runs past the figure's left or right edge so that it fits, keeping its
    anchor: a long title becomes two lines instead of being cut."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = figure.bbox
    for text in _drawn_texts(figure):
        for _ in range(attempts):
            box = text.get_window_extent(renderer)
            if box.x0 >= frame.x0 - _EDGE_TOLERANCE and box.x1 <= frame.x1 + _EDGE_TOLERANCE:
                break
            align = text.get_horizontalalignment()
            if align == "left":
                room = frame.x1 - max(box.x0, frame.x0)
            elif align == "right":
                room = min(box.x1, frame.x1) - frame.x0
            else:
                centre = (box.x0 + box.x1) / 2
                room = 2 * min(centre - frame.x0, frame.x1 - centre)
            lines = text.get_text().split("\n")
            longest = max(len(line) for line in lines)
            width = max(8, int(longest * max(room, 1.0) / max(box.width, 1.0)) - 2)
            if width >= longest:
                width = longest - 1
            text.set_text("\n".join(textwrap.fill(line, width) for line in lines))


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
