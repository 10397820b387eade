"""``--plot FILE.png``: the harness's comparison as bar charts (matplotlib, Agg backend).

One column per workload, each with its own scale (a get moves one item, a batch_get
10,000): on top the items per second each client reached (higher is better), below the
client CPU it spent per item (lower is better). matplotlib is imported only here, and only
when a plot is asked for; without it ``--plot`` fails before the run with one line that
says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .harness import Summary

__all__ = ["plot_summaries", "require_matplotlib"]

_INSTALL_HINT = (
    "--plot needs matplotlib, which is not installed: pip install matplotlib "
    "(or pip install -e '.[dev]')"
)
# One colour per client, the same in every panel (matplotlib's default cycle, fixed).
_COLOURS = {
    "asyncdyn": "#1f77b4",
    "aiobotocore": "#ff7f0e",
    "aioboto3": "#2ca02c",
    "aiodynamo": "#d62728",
    "pydynox": "#9467bd",
    "pydynox-model": "#8c564b",
    "floor": "#7f7f7f",
}
_OTHER_COLOUR = "#e377c2"
_PANEL_WIDTH = 2.6
_FIGURE_HEIGHT = 6.4


def require_matplotlib() -> None:
    """Raise ``RuntimeError`` with an install hint when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise RuntimeError(_INSTALL_HINT) from None


def plot_summaries(summaries: Sequence[Summary], path: str, *, title: str = "") -> None:
    """Draw ``summaries`` (one per client and workload) into the PNG at ``path``."""
    require_matplotlib()
    import matplotlib

    # No display needed (CI, SSH): select the file-only backend before pyplot loads.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(s.workload for s in summaries))
    if not workloads:
        raise ValueError("nothing to plot: no results")
    rows: list[tuple[str, Callable[[Summary], float]]] = [
        ("items/s (higher is better)", lambda s: s.items_per_s),
        ("client CPU µs/item (lower is better)", lambda s: s.cpu_us_per_item),
    ]
    figure, axes = plt.subplots(
        len(rows),
        len(workloads),
        figsize=(max(4.0, _PANEL_WIDTH * len(workloads)), _FIGURE_HEIGHT),
        squeeze=False,
    )
    try:
        for column, workload in enumerate(workloads):
            group = [s for s in summaries if s.workload == workload]
            for row, (label, value) in enumerate(rows):
                _bars(axes[row][column], group, value)
                if row == 0:
                    axes[row][column].set_title(workload, fontsize=11, fontweight="bold")
                if column == 0:
                    axes[row][column].set_ylabel(label, fontsize=9)
        if title:
            figure.suptitle(title, fontsize=12)
        figure.tight_layout()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=110)
    finally:
        plt.close(figure)


def _bars(ax: Any, group: Sequence[Summary], value: Callable[[Summary], float]) -> None:
    names = [s.client for s in group]
    heights = [value(s) for s in group]
    bars = ax.bar(
        range(len(group)),
        heights,
        color=[_COLOURS.get(name, _OTHER_COLOUR) for name in names],
    )
    ax.bar_label(bars, labels=[_short(h) for h in heights], fontsize=7, padding=2)
    ax.set_xticks(range(len(group)), names, rotation=40, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    # Room above the tallest bar for its label.
    ax.set_ylim(0, max(heights, default=1.0) * 1.18 or 1.0)
    ax.spines[["top", "right"]].set_visible(False)


def _short(value: float) -> str:
    """3,400 -> "3.4k": bar labels must fit a narrow panel."""
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.2g}"
