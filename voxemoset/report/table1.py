"""The paper's Table 1, computed the paper's way: NMOS on a seeded random sample of clips, Emo-C, CLIPScore.

Every figure is per split and over all rows ("all"); each group is read in `id` order, so a figure depends on
the published rows only, not on how they are sharded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TABLE1 = {
    "images": "Images",
    "utterances": "Utterances",
    "avg_duration_s": "Avg. length (s)",
    "avg_words": "Avg. words",
    "nmos": "NMOS",
    "emo_c": "Emo-C",
    "clip_score": "CLIPScore",
}
# How each figure is made; report.json and report.md carry these lines (and the README repeats them).
DEFINITIONS = {
    "images": "distinct image_id",
    "utterances": "published rows",
    "avg_duration_s": "mean duration_s (seconds of audio per clip)",
    "avg_words": "mean n_words (words per caption)",
    "nmos": "mean DNSMOS P.835 OVRL (dnsmos_ovrl) of a seeded random sample of min(nmos_sample, n) clips, as the "
    "paper's 10k random clips: rows in id order, numpy default_rng(seed).choice(n, k, replace=False), a fresh "
    "generator for each split and for all",
    "emo_c": "mean emotion2vec probability of the intended emotion (emo_target_conf)",
    "clip_score": "mean over rows of 100 * max(cos(CLIP image embedding, CLIP caption embedding), 0) between each "
    "row's image and its caption (torchmetrics' CLIPScore, clamped per pair)",
}
DECIMALS = 4


def mean(s: pd.Series) -> float | None:
    """Mean of the non-null values, rounded; None when there are none."""
    s = s.dropna()
    return round(float(s.mean()), DECIMALS) if len(s) else None


def sample_positions(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded random sample of min(size, n) of n rows, without replacement."""
    k = min(size, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def nmos(df: pd.DataFrame, size: int, seed: int) -> tuple[float | None, int]:
    """(mean DNSMOS OVRL of the sampled rows, sample size) of one group of rows."""
    ordered = df.sort_values("id", kind="stable")
    picked = ordered["dnsmos_ovrl"].iloc[sample_positions(len(ordered), size, seed)]
    return mean(picked), len(picked)


def table1(df: pd.DataFrame, clip: pd.Series | None, size: int, seed: int) -> dict:
    """Table 1's figures of one group of rows; `clip` maps id -> CLIPScore (None: not computed)."""
    value, _ = nmos(df, size, seed)
    return {
        "images": int(df["image_id"].nunique()),
        "utterances": len(df),
        "avg_duration_s": mean(df["duration_s"]),
        "avg_words": mean(df["n_words"]),
        "nmos": value,
        "emo_c": mean(df["emo_target_conf"]),
        "clip_score": mean(df["id"].map(clip)) if clip is not None else None,
    }


def split_order(names) -> list[str]:
    """train, then test, then any other split alphabetically."""
    return sorted(names, key=lambda s: ({"train": 0, "test": 1}.get(s, 2), s))


def by_split(df: pd.DataFrame, fn) -> dict:
    """`fn` of each split's rows (train, test, then others) and of all rows."""
    return {**{str(s): fn(df[df["split"] == s]) for s in split_order(df["split"].unique())}, "all": fn(df)}


def table1_by_split(df: pd.DataFrame, clip: pd.Series | None, clip_info: dict, size: int, seed: int) -> dict:
    """{"table1": per split and all, "table1_method": how each figure was made (sample sizes, seed, CLIP)}."""
    return {
        "table1": by_split(df, lambda g: table1(g, clip, size, seed)),
        "table1_method": {
            "definitions": DEFINITIONS,
            "nmos": {"sample": size, "seed": seed, "sampled": by_split(df, lambda g: nmos(g, size, seed)[1])},
            "clip_score": clip_info,
        },
    }
