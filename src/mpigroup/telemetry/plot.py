"""``mpigroup telemetry plot RUN -o out.png``: a run's time series with matplotlib.

One panel per metric, one line per series (node, plus device or user tags);
the x axis is seconds since the run started.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .runstore import RunStore

__all__ = ["plot_run"]


def _label(tags: dict) -> str:
    rest = ",".join(f"{k}={v}" for k, v in sorted(tags.items()) if k != "node")
    return tags.get("node", "?") + (f" {rest}" if rest else "")


def plot_run(run: RunStore, out: str, metrics: Optional[Sequence[str]] = None, max_lines: int = 16) -> list[str]:
    """Draw ``metrics`` (default: all) of ``run`` into the PNG ``out``; returns the metrics drawn."""
    import matplotlib  # heavy, optional (the telemetry extra): loaded for a plot only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    available = run.metrics()
    chosen = list(metrics) if metrics else available
    missing = [m for m in chosen if m not in available]
    if missing:
        raise ValueError(f"no metric {', '.join(missing)} in {run.run_dir} (it has: {', '.join(available) or 'none'})")
    if not chosen:
        raise ValueError(f"the run {run.run_dir} holds no samples")
    series = {m: run.query(m) for m in chosen}
    t0 = run.meta().get("start") or min(p[0] for ss in series.values() for s in ss for p in s.points[:1])
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.4 * len(chosen) + 0.6), sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], chosen):
        lines = series[metric]
        for s in lines[:max_lines]:
            xs = [ts - t0 for ts, _ in s.points]
            ys = [v for _, v in s.points]
            ax.plot(xs, ys, marker="." if len(xs) < 30 else None, linewidth=1.2, label=_label(s.tags))
        if len(lines) > max_lines:
            ax.text(0.99, 0.02, f"{len(lines) - max_lines} more series not drawn", transform=ax.transAxes,
                    ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("seconds since the run started")
    fig.suptitle(f"mpigroup telemetry: {run.run_dir}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return chosen
