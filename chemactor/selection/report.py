"""The selection report: before/after set-level divergences per view (Markdown) and PNG plots.

"Before" is the whole scored pool against the reference, "after" the kept rows against the reference;
a selection that works moves every view's KL and JS down. The plots show, per view, the standardized
divergences of kept and dropped rows, and the action-type distribution of reference, pool and kept rows.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np

from chemactor.selection.features import ActionTypeView
from chemactor.selection.selector import DivergenceSelector

__all__ = ["plot_action_types", "plot_score_histograms", "write_report"]


def plot_score_histograms(scored: datasets.Dataset, path: Path) -> Path:
    """Histograms of ``divergence`` and every ``divergence_*`` column, kept rows stacked on dropped ones.

    ``scored`` is a scored pool with a boolean ``selected`` column. One panel per view on a grid of at
    most four columns, so the plot stays readable however many views the selector has.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["divergence", *sorted(c for c in scored.column_names if c.startswith("divergence_"))]
    selected = np.asarray(scored["selected"], dtype=bool)
    ncols = min(4, len(columns))
    nrows = -(-len(columns) // ncols)
    figure, all_axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows), squeeze=False)
    for axes, column in zip(all_axes.flat, columns, strict=False):  # spare axes are switched off below
        values = np.asarray(scored[column], dtype=float)
        finite = np.isfinite(values)
        bins = np.histogram_bin_edges(values[finite], bins=20) if finite.any() else 10
        groups = [values[finite & selected], values[finite & ~selected]]
        axes.hist(groups, bins=bins, stacked=True, label=["kept", "dropped"], color=["tab:green", "tab:gray"])
        axes.set_title("combined" if column == "divergence" else column.removeprefix("divergence_"), fontsize=10)
    for axes in all_axes.flat[len(columns) :]:
        axes.axis("off")
    for axes in all_axes[:, 0]:
        axes.set_ylabel("pool rows")
    for axes in all_axes[-1, :]:
        axes.set_xlabel("standardized divergence")
    all_axes[0][0].legend()
    figure.suptitle(f"Divergence from the reference ({int(selected.sum())} of {len(selected)} rows kept)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def plot_action_types(labels: list[str], distributions: dict[str, np.ndarray], path: Path) -> Path:
    """Side-by-side bars of action-type frequencies (unigrams) of several sets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = {name: counts / max(counts.sum(), 1) for name, counts in distributions.items()}
    order = np.argsort(-sum(shares.values()))
    shown = [index for index in order if any(share[index] > 0 for share in shares.values())]
    figure, axes = plt.subplots(figsize=(max(6, 0.35 * len(shown) + 2), 4))
    width = 0.8 / len(shares)
    for offset, (name, share) in enumerate(shares.items()):
        axes.bar(np.arange(len(shown)) + offset * width, share[shown], width=width, label=name)
    axes.set_xticks(np.arange(len(shown)) + 0.4 - width / 2, [labels[index] for index in shown], rotation=70)
    axes.set(ylabel="share of actions", title="Action types")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(
    selector: DivergenceSelector, scored: datasets.Dataset, output_dir: str | Path, rule: str = ""
) -> Path:
    """Write ``report.md``, ``score_histograms.png`` and ``action_types.png`` into ``output_dir``.

    ``scored`` is the scored pool with its boolean ``selected`` column; ``rule`` says how rows were kept.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    kept = scored.select(np.flatnonzero(np.asarray(scored["selected"], dtype=bool)))
    pool_counts, kept_counts = selector.counts(scored), selector.counts(kept)
    before, after = selector.set_divergences(pool_counts), selector.set_divergences(kept_counts)
    plots = [plot_score_histograms(scored, output_dir / "score_histograms.png")]
    types = next((view for view in selector.views if isinstance(view, ActionTypeView)), None)
    if types is not None:
        unigrams = slice(1, 1 + len(types.vocabulary))  # the unigram buckets of the view
        labels = types.labels()[unigrams]
        distributions = {
            "reference": selector.reference_counts[types.name][unigrams],
            "pool": pool_counts[types.name][unigrams],
            "kept": kept_counts[types.name][unigrams],
        }
        plots.append(plot_action_types(labels, distributions, output_dir / "action_types.png"))

    lines = [
        "# Divergence selection report",
        "",
        f"Kept **{len(kept)}** of {len(scored)} pool rows{f' ({rule})' if rule else ''}; "
        f"{sum(scored['duplicate'])} rows were duplicates ({sum(scored['seed_copy'])} of them copies of reference "
        f"rows), {sum(scored['contaminated'])} overlapped held-out rows (dropped as contaminated), "
        f"{sum(count > 0 for count in scored['crosscheck_failed'])} failed generation's cross-check. "
        f"Divergence: per-sample {selector.divergence.upper()}, smoothing {selector.smoothing}.",
        "",
        "Set-level divergence from the reference per view, in nats (lower is closer):",
        "",
        "| view | weight | KL pool | KL kept | JS pool | JS kept |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in selector.log_p:
        lines.append(
            f"| {name} | {selector.weights[name]:g} | {before[name]['kl']:.4f} | {after[name]['kl']:.4f} "
            f"| {before[name]['js']:.4f} | {after[name]['js']:.4f} |"
        )
    lines += ["", *(f"![{plot.stem}]({plot.name})" for plot in plots), ""]
    path = output_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
