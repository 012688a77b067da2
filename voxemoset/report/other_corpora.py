"""Table 1's other rows, made as VoxEmoset's (report/table1.py): SpokenCOCO and Flickr8kAudio from the
`voxemoset corpus` shards under <out>/corpora/, CREMA-D from its own folder (every clip of it, all six emotions).

A corpus's published rows carry no DNSMOS or emotion2vec scores, so NMOS (and CREMA-D's Emo-C) are scored here, on
the same seeded sample rule: min(nmos_sample, n) of the rows in id order. Figures are kept in
<out>/report/corpora/NAME.json with the key of what made them (files, settings, models): a second report scores
nothing again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from voxemoset.config import ReportConfig
from voxemoset.errors import UserError, describe
from voxemoset.hub.shards import list_dataset_shards
from voxemoset.report.table1 import mean, sample_positions

# `voxemoset corpus` output folder name -> the name Table 1 gives its row.
READ_CORPORA = {"spokencoco": "SpokenCOCO", "flickr8k": "Flickr8kAudio"}
CREMAD = "CREMA-D"


@dataclass(frozen=True)
class CremadInputs:
    """Where CREMA-D lives and which emotion2vec hears it (the build's `sources.cremad` and gates model)."""

    root: Path | None = None
    emotion_model: str | None = None
    emotion_device: str = "auto"


def _files_key(paths: list[Path], settings: ReportConfig, *models: str | None) -> str:
    """What the figures depend on: each file's name, size and change time, the sample rule, the models."""
    files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    blob = json.dumps([files, settings.nmos_sample, settings.seed, *models])
    return hashlib.sha256(blob.encode()).hexdigest()


def _cached(folder: Path, name: str, key: str, compute) -> dict:
    from voxemoset.store.atomic import write_json

    path = folder / f"{name}.json"
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
            if kept.get("key") == key:
                return kept["row"]
        except (ValueError, KeyError, AttributeError):
            pass  # a damaged cache file is recomputed
    row = compute()
    write_json(path, {"key": key, "row": row})
    return row


def _dnsmos_ovrl(clips: list[np.ndarray]) -> list[float]:
    from voxemoset.audio import OUT_RATE
    from voxemoset.models.dnsmos import DnsmosScorer

    return [s["dnsmos_ovrl"] for s in DnsmosScorer().score(clips, OUT_RATE)] if clips else []


def _sampled_audio(paths: list[Path], ids: set[str]) -> dict[str, np.ndarray]:
    """id -> 16 kHz clip of the sampled rows, one row group's audio bytes at a time."""
    from voxemoset.audio import OUT_RATE, decode_at_rate

    clips = {}
    for path in paths:
        shard = pq.ParquetFile(path)
        for group in range(shard.num_row_groups):
            for r in shard.read_row_group(group, columns=["id", "audio"]).to_pylist():
                if r["id"] in ids:
                    clips[r["id"]] = decode_at_rate(r["audio"]["bytes"], OUT_RATE)
    return clips


def read_corpus_row(folder: Path, settings: ReportConfig) -> dict:
    """Table 1's figures of one `voxemoset corpus` output (all its splits; no emotion labels: Emo-C is None)."""
    from voxemoset.report.clip import score_folder

    paths = [p for ps in list_dataset_shards(folder / "data").values() for p in ps]
    columns = ["id", "image_id", "duration_s", "n_words"]
    df = pd.concat([pq.read_table(p, columns=columns).to_pandas() for p in paths], ignore_index=True)
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    picked = df["id"].iloc[sample_positions(len(df), settings.nmos_sample, settings.seed)].tolist()
    audio = _sampled_audio(paths, set(picked))
    nmos = _dnsmos_ovrl([audio[i] for i in picked])
    clip, clip_info = score_folder(folder / "data", settings)
    return {
        "images": int(df["image_id"].nunique()),
        "utterances": len(df),
        "avg_duration_s": mean(df["duration_s"]),
        "avg_words": mean(df["n_words"]),
        "nmos": mean(pd.Series(nmos, dtype=float)),
        "emo_c": None,
        "clip_score": mean(df["id"].map(clip)) if clip is not None else None,
        "method": {"nmos_sampled": len(picked), "clip_score": clip_info, "emo_c": "no emotion labels"},
    }


def cremad_clips(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Every CREMA-D clip whose name parses (all six emotions, as the paper's "all of CREMA-D"): key, path, code,
    words; and the files left out, each with why."""
    from voxemoset.corpora.cremad import check_tree, parse_cremad_name
    from voxemoset.corpora.emobox import load_sentences, visible_files
    from voxemoset.corpora.scan import RootCheck
    from voxemoset.stages.captions.validate import words_of

    root = Path(root).absolute()
    texts, inside = load_sentences()["cremad"], RootCheck(root)
    rows, skipped = [], []
    for path in visible_files(check_tree(root)):
        try:
            actor, sentence, emotion, level = parse_cremad_name(path)
        except ValueError as e:
            skipped.append(f"{path.name}: {e}")
            continue
        if not inside(path) or sentence not in texts:
            skipped.append(f"{path.name}: outside its root or an unknown sentence code")
            continue
        key = f"cremad-{actor}-{sentence}-{emotion}-{level}"
        rows.append({"id": key, "path": str(path), "code": emotion, "n_words": len(words_of(texts[sentence]))})
    return pd.DataFrame(rows, columns=["id", "path", "code", "n_words"]).sort_values("id", kind="stable"), skipped


def cremad_row(inputs: CremadInputs, settings: ReportConfig) -> dict:
    """CREMA-D's figures: no images (no CLIPScore); durations of every clip; NMOS on the seeded sample; Emo-C the
    mean emotion2vec probability of the labelled emotion over the sample's clips of the five emotions."""
    from voxemoset.audio import OUT_RATE, AudioReadError, load_audio, to_out_rate
    from voxemoset.corpora.cremad import CREMAD_TO_EMOTION

    df, skipped = cremad_clips(inputs.root)
    clips, durations = {}, []
    for key, path in zip(df["id"], df["path"], strict=True):
        try:
            wave, rate = load_audio(path)
        except AudioReadError as e:
            skipped.append(f"{Path(path).name}: {e}")
            continue
        clips[key] = to_out_rate(wave, rate)
        durations.append(len(clips[key]) / OUT_RATE)
    df = df[df["id"].isin(clips)].reset_index(drop=True)
    picked = df.iloc[sample_positions(len(df), settings.nmos_sample, settings.seed)]
    nmos = _dnsmos_ovrl([clips[k] for k in picked["id"]])
    labelled = picked[picked["code"].isin(CREMAD_TO_EMOTION)]
    emo_c, emo_info = None, {"clips": len(labelled)}
    try:
        from voxemoset.models.emotion2vec import Emotion2vecScorer

        if inputs.emotion_model is None:
            raise UserError("no emotion2vec folder given (gates.emotion_model)")
        scorer = Emotion2vecScorer(inputs.emotion_model, inputs.emotion_device)
        probs = scorer.score([clips[k] for k in labelled["id"]])
        emo_c = mean(pd.Series([p[CREMAD_TO_EMOTION[c]] for p, c in zip(probs, labelled["code"], strict=True)]))
    except UserError as e:
        emo_info["error"] = describe(e)
    return {
        "images": None,
        "utterances": len(df),
        "avg_duration_s": mean(pd.Series(durations, dtype=float)),
        "avg_words": mean(df["n_words"]),
        "nmos": mean(pd.Series(nmos, dtype=float)),
        "emo_c": emo_c,
        "clip_score": None,
        "method": {"nmos_sampled": len(picked), "emo_c": emo_info, "clip_score": "no images", "skipped": skipped},
    }


def other_rows(out: Path, settings: ReportConfig, cremad: CremadInputs | None) -> dict[str, dict]:
    """Table 1 rows of every read corpus written under <out>/corpora/, and of CREMA-D when its folder is given."""
    from voxemoset.models.resolve import model_label

    out, rows = Path(out), {}
    cache = out / "report" / "corpora"
    for folder_name, name in READ_CORPORA.items():
        folder = out / "corpora" / folder_name
        paths = [p for ps in list_dataset_shards(folder / "data").values() for p in ps]
        if paths:
            key = _files_key(paths, settings, model_label(settings.clip_model))
            rows[name] = _cached(cache, folder_name, key, lambda f=folder: read_corpus_row(f, settings))
    if cremad is not None and cremad.root is not None:
        df, _ = cremad_clips(cremad.root)
        key = _files_key([Path(p) for p in df["path"]], settings, cremad.emotion_model)
        rows[CREMAD] = _cached(cache, "cremad", key, lambda: cremad_row(cremad, settings))
    return rows


# The paper's own counts where the text available here states them (the training data section): the rest of its
# Table 1 (seconds, words, NMOS, CLIPScore, Emo-C) is not, so those cells say so rather than guess.
PAPER = {
    "VoxEmoset (all)": {"images": "82k", "utterances": "247k", "clip_score": 30.27},
    "VoxEmoset train": {"images": "69k", "utterances": "208k"},
    "SpokenCOCO train + restval + val": {"images": "118k", "utterances": "591k"},
}


def to_markdown(table1: dict, others: dict[str, dict], columns: dict[str, str]) -> str:
    """One table: VoxEmoset per split and all, each other corpus, then the paper's stated figures."""
    from voxemoset.markdown import md_table

    rows = [[f"VoxEmoset ({split})", *(figures.get(k) for k in columns)] for split, figures in table1.items()]
    order = [*READ_CORPORA.values(), CREMAD]  # report.json keeps its keys sorted
    others = {name: others[name] for name in sorted(others, key=lambda n: order.index(n) if n in order else 99)}
    rows += [[name, *(figures.get(k) for k in columns)] for name, figures in others.items()]
    rows += [[f"paper: {name}", *(stated.get(k, "not stated") for k in columns)] for name, stated in PAPER.items()]
    notes = [f"- {name}: NMOS on {row['method']['nmos_sampled']} clips" + (
        f"; Emo-C missing: {row['method']['emo_c']['error']}" if isinstance(row["method"]["emo_c"], dict)
        and row["method"]["emo_c"].get("error") else "") for name, row in others.items()]  # fmt: skip
    return md_table(["", *columns.values()], rows) + ("\n\n" + "\n".join(notes) if notes else "")
