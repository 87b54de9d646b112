"""Charts of measured results (the ``plot`` extra: matplotlib): how a connect check's flows
spread over a Service's backends (ECMP), and a pod × pod reachability heat map.

Drawn headless (the Agg backend) into PNG, SVG or PDF as the file's suffix says. Long pod
names go on the bar chart's vertical axis, where they have room; the heat map numbers its
axes once there are too many pods to name, and lists the names beside it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from controlplane.errors import InputError

if TYPE_CHECKING:
    from vrouter.lab.checks import CheckResult
    from vrouter.lab.reach import Reachability

#: beyond this many pods the heat map numbers its rows and columns instead of naming them
NAMED_AXES = 40


def require_matplotlib(option: str = "--plot") -> None:
    """Charts need the ``plot`` extra; say how to get it (before any long work starts)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(f'{option} draws with matplotlib, which is not installed: pip install "vrsim[plot]"', path=option) from None


def pyplot() -> Any:
    """matplotlib's pyplot on the headless backend."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ecmp_spread(check: CheckResult, path: Path) -> None:
    """A bar per backend: the flows it received, against an even share."""
    plt = pyplot()
    backends = check.observed.get("backends") or {}
    names = sorted(backends)
    counts = [backends[n] for n in names]
    figure, axes = plt.subplots(figsize=(9, 1.4 + 0.32 * max(len(names), 2)))
    axes.barh(range(len(names)), counts, color="#1f6fb2")
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.invert_yaxis()
    for y, count in enumerate(counts):
        axes.annotate(str(count), (count, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    imbalance = check.observed.get("imbalance")
    summary = f"{check.observed.get('received', sum(counts))}/{check.observed.get('sent', '?')} flows answered"
    if names:
        even = sum(counts) / len(names)
        axes.axvline(even, color="#c0392b", linestyle="--", linewidth=1)
        summary += f"; even share {even:g} (dashed)"
    if imbalance is not None:
        summary += f", imbalance {imbalance:.3f}"
    axes.set_xlabel("flows")
    axes.set_title(textwrap.fill(f"step {check.step}: connect {check.source} → {check.target}", 90) + "\n" + summary, fontsize=9)
    axes.margins(x=0.12)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def reach_heatmap(result: Reachability, path: Path) -> None:
    """Pods × pods: reachable or not, sources as rows."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    n = len(result.pods)
    named = n <= NAMED_AXES
    side = min(4 + 0.22 * n, 30)
    figure, axes = plt.subplots(figsize=(side + (0 if named else 4), side))
    colours = ListedColormap(["#e74c3c", "#2ecc71", "#d0d3d4"])
    cells = result.matrix.astype(int)
    np.fill_diagonal(cells, 2)  # a pod to itself: not a pair
    axes.imshow(cells, cmap=colours, vmin=0, vmax=2, interpolation="nearest")
    labels = result.pods if named else [str(i) for i in range(n)]
    step = 1 if n <= 80 else n // 40
    axes.set_xticks(range(0, n, step), labels[::step], rotation=90, fontsize=7)
    axes.set_yticks(range(0, n, step), labels[::step], fontsize=7)
    axes.set_xlabel("to")
    axes.set_ylabel("from")
    what = result.protocol + (f"/{result.port}" if result.port else "")
    reachable = int(result.matrix.sum()) - n
    axes.set_title(f"reachability, {what}: {reachable}/{n * (n - 1)} pairs reachable", fontsize=10)
    axes.legend(handles=[Patch(color="#2ecc71", label="reachable"), Patch(color="#e74c3c", label="not"), Patch(color="#d0d3d4", label="itself")], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    if not named:
        figure.text(0.80, 0.5, "\n".join(f"{i}: {name}" for i, name in enumerate(result.pods[:120])), fontsize=5, va="center", family="monospace")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def suffix_checked(path: Path, option: str) -> Path:
    """A chart's file: its suffix chooses the format."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"{option} {path}: name a .png, .svg or .pdf file (the suffix chooses the format)", path=option)
    return path
