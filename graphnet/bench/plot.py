"""``graphnet bench ... --plot FILE``: a bar chart of each case beside the
reference it was measured against in the same run.

One group of bars per compared case: graphnet's rate and its reference's
rate (Mpps, or what the case measures), each bar labelled with its value and
the group with the ratio. Needs matplotlib (``pip install 'graphnet[plot]'``);
the figure is written with the Agg backend, no display needed.
"""
from __future__ import annotations


class PlotUnavailable(Exception):
    """matplotlib is not installed."""


def compared(lines: list) -> list:
    """[(label, value, reference label, reference value, ratio, unit)] for each
    line with a ratio whose reference was measured in the same run."""
    by_case = {(l["bench"], l["case"]): l for l in lines}
    out = []
    for l in lines:
        if "ratio" not in l or "against" not in l:
            continue
        ref = by_case.get((l["bench"], l["against"]))
        if ref is not None and ref.get("pps") and l.get("pps"):
            out.append((f"{l['bench']}\n{l['case']}", l["pps"] / 1e6, l["against"], ref["pps"] / 1e6,
                        l["ratio"], f"million {l.get('unit', 'packet')}s/s"))
        else:                               # the reference has no row of its own: plot the ratio only
            out.append((f"{l['bench']}\n{l['case']}", l["ratio"], l["against"], 1.0, l["ratio"], "x reference"))
    return out


def plot(lines: list, path: str) -> int:
    """Write the chart of `lines` (bench result dicts) to `path`; returns the
    number of groups drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'graphnet[plot]'") from None
    groups = compared(lines)
    if not groups:
        raise PlotUnavailable("nothing to plot: no case of this run was compared with a reference")
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4.5))
    xs = range(len(groups))
    w = 0.38
    ours = ax.bar([x - w / 2 for x in xs], [g[1] for g in groups], w, label="graphnet", color="#3b75af")
    refs = ax.bar([x + w / 2 for x in xs], [g[3] for g in groups], w, label="reference (same run)", color="#bbbbbb")
    ax.bar_label(ours, fmt="%.3g", fontsize=8)
    ax.bar_label(refs, labels=[g[2] for g in groups], fontsize=7, rotation=90, label_type="center")
    for x, g in zip(xs, groups):
        ax.annotate(f"{g[4]:.2f}x", (x, max(g[1], g[3])), textcoords="offset points", xytext=(0, 12),
                    ha="center", fontsize=9, fontweight="bold")
    ax.set_xticks(list(xs), [g[0] for g in groups], fontsize=8)
    ax.set_ylabel(" / ".join(sorted({g[5] for g in groups})))
    ax.margins(y=0.2)
    ax.legend(fontsize=8)
    ax.set_title("graphnet vs references measured in the same run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(groups)
