"""The report's plots as PNGs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: a headless machine has no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from voxemoset.store.atomic import write_atomic  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    # Agg writes the same PNG bytes for the same figure; no timestamp in the metadata keeps reruns identical.
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}))
    plt.close(fig)
    return path


def plot_words(report: dict, path: Path) -> Path:
    """Histogram of caption word counts, with the accepted band shaded."""
    words = report["words"]
    lo, hi = words["band"]
    xs = [int(k) for k in words["counts"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.axvspan(lo - 0.5, hi + 0.5, color="tab:green", alpha=0.15, label=f"{lo}-{hi} word band")
    ax.bar(xs, [words["counts"][str(x)] for x in xs], color="tab:blue")
    ax.set(xlabel="words per caption", ylabel="utterances", title="Caption length",
           xlim=(min([lo, *xs]) - 2.5, max([hi, *xs]) + 2.5))  # fmt: skip
    ax.legend()
    return _save(fig, path)


def plot_dnsmos(report: dict, path: Path) -> Path:
    """DNSMOS score distributions (OVRL, SIG, BAK, P.808) as step histograms."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, hist in report["dnsmos"].items():
        edges = np.array(hist["edges"])
        ax.stairs(hist["counts"], edges, label=f"{name.removeprefix('dnsmos_').upper()} (mean {hist['mean']})")
    ax.set(xlabel="DNSMOS", ylabel="utterances", title="Speech quality (DNSMOS)", xlim=(1, 5))
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion(report: dict, path: Path) -> Path:
    """Intended vs detected emotion, each row normalised to the share of its intended emotion's clips."""
    c = report["confusion"]
    m = np.array(c["matrix"], dtype=float)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(c["detected"]), 4.2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(c["detected"])), c["detected"], rotation=45, ha="right")
    ax.set_yticks(range(len(c["intended"])), c["intended"])
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    ax.set(xlabel="detected (emotion2vec)", ylabel="intended",
           title=f"Emotion: {c['kept']} kept + {c['rejected']} rejected clips")  # fmt: skip
    return _save(fig, path)


def plot_attempts(report: dict, path: Path) -> Path:
    """How many synthesis attempts the kept utterances needed, per split."""
    splits = [s for s in report["attempts"] if s != "all"]
    keys = sorted({a for s in splits for a in report["attempts"][s]}, key=int)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(len(splits), 1)
    for i, s in enumerate(splits):
        xs = np.arange(len(keys)) + i * width
        ax.bar(xs, [report["attempts"][s].get(k, 0) for k in keys], width=width, label=s)
    ax.set_xticks(np.arange(len(keys)) + width * (len(splits) - 1) / 2, keys)
    ax.set(xlabel="attempts", ylabel="kept utterances", title="Synthesis attempts")
    ax.legend()
    return _save(fig, path)


def write_plots(report: dict, folder: Path) -> dict[str, Path]:
    """All four PNGs under `folder`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    makers = {"words": plot_words, "dnsmos": plot_dnsmos, "confusion": plot_confusion, "attempts": plot_attempts}
    return {name: make(report, folder / f"{name}.png") for name, make in makers.items()}
