"""Texts fit their figures: the bounding-box check and the wrapping done at save time."""

from __future__ import annotations

from atlas_ray import report
from atlas_ray.report._style import fit_texts, new_figure, overflowing_texts, render_checked

LONG = "a title far longer than this small figure is wide, as the ASHA title was on a one-unit search"


def test_a_title_past_the_edge_is_found_and_wrapped_to_fit():
    figure = new_figure(4, 3)
    figure.suptitle(LONG, x=0.01, ha="left", va="top", y=0.97)
    ax = figure.add_subplot()
    ax.set_title(LONG, loc="left", fontsize=9)
    ax.plot([0, 1], [0, 1])
    found = overflowing_texts(figure)
    assert len(found) == 2 and all(LONG[:40] in line and "the figure is 320 x 240 pixels" in line
                                   for line in found)
    fit_texts(figure)
    assert overflowing_texts(figure) == []
    assert "\n" in figure.get_suptitle() and "\n" in ax.get_title(loc="left")
    png, clipped = render_checked(new_figure(4, 3))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and clipped == []


def test_tick_labels_cut_at_the_edge_are_found():
    figure = new_figure(4, 3)
    ax = figure.add_axes((0.02, 0.1, 0.9, 0.8))  # no room left of the axes for the y tick labels
    ax.plot([0, 1], [1000.5, 1000.75])
    assert overflowing_texts(figure) == ["y tick or axis labels of axes 0 pass the figure's edge"]


def test_the_asha_title_fits_a_one_unit_search(june_a):
    one_unit = [r for r in june_a.results if r.identity.unit == "three_class"]
    figure = report.asha_plot(one_unit, "val_loss", max_t=8, grace_period=2, reduction_factor=2)
    assert figure.get_size_inches()[0] == 6.5  # one panel: the narrow figure the long title was cut on
    assert overflowing_texts(figure) == []  # fits as drawn, before any wrapping at save time
    assert "grace 2, reduction 2, max_t 8" in figure.get_suptitle()
