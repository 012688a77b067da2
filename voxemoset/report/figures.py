"""Table 1 and the breakdowns behind it, from `<out>/dataset` and every stage's rejects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from voxemoset.config import ReportConfig
from voxemoset.departures import section_of
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import UserError
from voxemoset.hub.features import COLUMNS, MEDIA_COLUMNS
from voxemoset.hub.shards import list_dataset_shards
from voxemoset.markdown import md_table
from voxemoset.report.caption_drops import caption_drops
from voxemoset.report.caption_drops import to_markdown as caption_drops_markdown
from voxemoset.report.other_corpora import CremadInputs
from voxemoset.report.other_corpora import to_markdown as corpora_markdown
from voxemoset.report.table1 import DEFINITIONS, TABLE1, by_split, mean, table1_by_split
from voxemoset.store.manifest import read_manifest
from voxemoset.store.reading import stage_markers, stage_rejects, stage_shards, stages_built

DEFAULT_WORDS_BAND = (8, 15)


def load_rows(out: Path) -> pd.DataFrame:
    """Every published row without its image and audio bytes; `emotion` as its name."""
    splits = list_dataset_shards(Path(out) / "dataset" / "data")
    if not splits:
        raise UserError(
            f"no dataset shards under {Path(out) / 'dataset' / 'data'}: run `voxemoset stage dataset` first"
        )
    columns = [c for c in COLUMNS if c not in MEDIA_COLUMNS]
    frames = [pq.read_table(p, columns=columns).to_pandas() for paths in splits.values() for p in paths]
    df = pd.concat(frames, ignore_index=True)
    df["emotion"] = df["emotion"].map(lambda i: EMOTIONS[int(i)])
    return df


def _counts(s: pd.Series) -> dict:
    return {str(k): int(v) for k, v in s.value_counts().sort_index().items()}


def _wer(df: pd.DataFrame) -> dict:
    w = df["wer"].dropna()
    if not len(w):
        return {"n": 0}
    return {"n": len(w), "mean": round(float(w.mean()), 4), "median": round(float(w.median()), 4),
            "p90": round(float(w.quantile(0.9)), 4), "zero_share": round(float((w == 0).mean()), 4)}  # fmt: skip


def _histogram(s: pd.Series) -> dict:
    """Counts in 0.1-wide bins over DNSMOS's 1-5 scale (values outside are clipped into the end bins)."""
    edges = np.round(np.arange(1.0, 5.01, 0.1), 1)
    counts, _ = np.histogram(s.dropna().clip(1.0, 5.0), bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "mean": mean(s)}


def read_rejects(out: Path) -> dict[str, dict[str, int]]:
    """Rejects per stage and reason, from every stage's rejects tables."""
    counts: dict[str, dict[str, int]] = {}
    for stage in stages_built(out):
        paths = stage_rejects(out, stage)
        if not paths:
            continue
        reasons = pd.Series(
            [r for p in paths for r in pq.read_table(p, columns=["reason"]).column("reason").to_pylist()], dtype=object
        )
        counts[stage] = _counts(reasons) if len(reasons) else {}
    return counts


def confusion(out: Path, df: pd.DataFrame) -> dict:
    """Intended vs detected emotion over kept clips, plus gates rejects when the speech stage names their intent."""
    pairs = list(zip(df["emotion"], df["emo_pred"].fillna("none"), strict=True))
    rejected = [r for p in stage_rejects(out, "gates") for r in pq.read_table(p).to_pylist()]
    intent: dict[str, str] = {}
    if rejected:
        for p in stage_shards(out, "speech"):
            t = pq.read_table(p, columns=["id", "emotion"])
            intent.update(zip(t.column("id").to_pylist(), t.column("emotion").to_pylist(), strict=True))
    extra = [(intent[r["source"]], r.get("emo_pred") or "none") for r in rejected if r["source"] in intent]
    detected = list(EMOTIONS) + sorted({d for _, d in pairs + extra} - set(EMOTIONS))
    matrix = [[0] * len(detected) for _ in EMOTIONS]
    for which in (pairs, extra):
        for a, d in which:
            if a in EMOTIONS:
                matrix[EMOTIONS.index(a)][detected.index(d)] += 1
    return {"intended": list(EMOTIONS), "detected": detected, "kept": len(pairs), "rejected": len(extra),
            "matrix": matrix}  # fmt: skip


def words_band(out: Path) -> tuple[int, int]:
    """The caption length band the build used (recorded by the dataset stage), else the paper's 8-15."""
    for marker in stage_markers(out, "dataset").values():
        try:
            band = marker["stats"]["words_band"]
            return int(band[0]), int(band[1])
        except (KeyError, ValueError, TypeError, IndexError):
            continue
    return DEFAULT_WORDS_BAND


def departures_of(out: Path) -> str | None:
    """The card's "Departures from the paper" table: the dataset stage measured it with the build's config."""
    card = Path(out) / "dataset" / "README.md"
    return section_of(card.read_text()) if card.is_file() else None


def compute(out: Path, settings: ReportConfig | None = None, cremad: CremadInputs | None = None) -> dict:
    """Everything the report shows, as plain JSON data (CLIPScore `None` with the reason when CLIP cannot load).

    `cremad`: where CREMA-D is and what hears it, for its Table 1 row (None: no CREMA-D row).
    """
    from voxemoset.report.clip import score_rows
    from voxemoset.report.other_corpora import other_rows

    out, settings = Path(out), settings or ReportConfig()
    df = load_rows(out)
    band = words_band(out)
    speakers = df.groupby(["reference_corpus", "reference_speaker"], dropna=False).size().sort_values(ascending=False)
    clip, clip_info = score_rows(out, settings)
    return {
        **table1_by_split(df, clip, clip_info, settings.nmos_sample, settings.seed),
        "per_emotion": by_split(df, lambda g: _counts(g["emotion"])),
        "per_corpus": by_split(df, lambda g: _counts(g["reference_corpus"])),
        "per_speaker": [{"corpus": str(c), "speaker": str(s), "utterances": int(n)} for (c, s), n in speakers.items()],
        "wer": by_split(df, _wer),
        "attempts": by_split(df, lambda g: _counts(g["attempts"])),
        "mean_attempts": by_split(df, lambda g: mean(g["attempts"])),
        "words": {
            "band": list(band),
            "counts": _counts(df["n_words"]),
            "outside_band": int(((df["n_words"] < band[0]) | (df["n_words"] > band[1])).sum()),
        },  # fmt: skip
        "dnsmos": {c: _histogram(df[c]) for c in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")},
        "confusion": confusion(out, df),
        "rejects": read_rejects(out),
        "table1_corpora": other_rows(out, settings, cremad) if settings.other_corpora else {},
        "caption_drops": caption_drops(out),
        "departures": departures_of(out),
        "manifest": read_manifest(out)["stages"],
    }


def table1_notes(report: dict) -> str:
    """How Table 1 was computed (sample sizes, seed, CLIP), and why CLIPScore is missing if it is."""
    method = report["table1_method"]
    nmos, clip = method["nmos"], method["clip_score"]
    sampled = ", ".join(f"{s} {n}" for s, n in nmos["sampled"].items())
    lines = [f"- **{TABLE1[k]}**: {DEFINITIONS[k]}." for k in TABLE1]
    lines.append(f"- NMOS sample: up to {nmos['sample']} clips per split, seed {nmos['seed']} ({sampled} clips).")
    if clip.get("error"):
        lines.append(f"- **CLIPScore missing** (CLIP `{clip['model']}`): {clip['error']}")
    else:
        lines.append(f"- CLIP: `{clip['model']}`, {clip.get('pairs', 0)} image-caption pairs.")
    return "\n".join(lines)


def to_markdown(report: dict) -> str:
    """report.md: Table 1, then the breakdowns."""
    splits = list(report["table1"])
    missing = "missing" if report["table1_method"]["clip_score"].get("error") else None
    t1 = [[name, *((report["table1"][s][key] if key != "clip_score" else report["table1"][s][key] or missing)
                   for s in splits)] for key, name in TABLE1.items()]  # fmt: skip
    emo = [[e, *(report["per_emotion"][s].get(e, 0) for s in splits)] for e in EMOTIONS]
    corpora = sorted({c for s in splits for c in report["per_corpus"][s]})
    corp = [[c, *(report["per_corpus"][s].get(c, 0) for s in splits)] for c in corpora]
    wer = [[s, *(report["wer"][s].get(k) for k in ("n", "mean", "median", "p90"))] for s in splits]
    att = sorted({a for s in splits for a in report["attempts"][s]}, key=int)
    attempts = [[a, *(report["attempts"][s].get(a, 0) for s in splits)] for a in att]
    spk = [[r["corpus"], r["speaker"], r["utterances"]] for r in report["per_speaker"][:30]]
    rej = [[st, reason, n] for st, reasons in report["rejects"].items() for reason, n in reasons.items()]
    w = report["words"]
    parts = [
        "# VoxEmoset report\n",
        "## Table 1\n", md_table(["", *splits], t1), "\n" + table1_notes(report),
        "\n## Table 1 beside the other corpora (made the same way)\n",
        corpora_markdown(report["table1"], report.get("table1_corpora") or {}, TABLE1),
        "\n## Utterances per emotion\n", md_table(["emotion", *splits], emo),
        "\n## Utterances per reference corpus\n", md_table(["corpus", *splits], corp),
        f"\n## Reference speakers ({len(report['per_speaker'])}; the 30 most used)\n",
        md_table(["corpus", "speaker", "utterances"], spk),
        "\n## WER (Whisper transcript vs caption)\n", md_table(["split", "n", "mean", "median", "p90"], wer),
        "\n## Synthesis attempts per kept utterance\n", md_table(["attempts", *splits], attempts),
        f"\nCaptions outside the {w['band'][0]}-{w['band'][1]} word band: {w['outside_band']}\n",
        "\n## Departures from the paper (as the dataset card states them)\n",
        report.get("departures") or "the dataset card states none (built before voxemoset listed them)",
        "\n## Rejects\n", md_table(["stage", "reason", "count"], rej) if rej else "none",
        "\n## Images dropped by the captions stage, per emotion\n", caption_drops_markdown(report.get("caption_drops")),
        "\n![words](words.png) ![dnsmos](dnsmos.png) ![confusion](confusion.png) ![attempts](attempts.png)\n",
    ]  # fmt: skip
    return "\n".join(parts)
