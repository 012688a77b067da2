"""A written corpus's dataset card, `<out>/corpora/<name>/README.md`: the header `datasets` and the Hub read
(typed features, splits, sizes), then what the rows are, how many utterances were rejected and why, and whose
terms apply. Rewritten after every `voxemoset corpus` run, from the shards on disk."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import yaml

from voxemoset.audio import OUT_RATE
from voxemoset.code_version import code_version, commit_label
from voxemoset.corpora.export.rows import EXTRA_COLUMNS, PUBLISHED_COLUMNS, corpus_features
from voxemoset.corpora.human_read import SPLITS
from voxemoset.hub.card_header import hub_header
from voxemoset.hub.features import DESCRIPTIONS
from voxemoset.hub.shards import SplitStats, list_dataset_shards
from voxemoset.markdown import md_table
from voxemoset.store.atomic import write_atomic

CARD = "README.md"

# What each corpus is and how its split was decided (facts from the corpora's papers and file layouts).
ABOUT = {
    "spokencoco": (
        "SpokenCOCO",
        "MS COCO images with their captions read aloud by people (SpokenCOCO, Hsu et al., 2021), the "
        "human-read half of the training mixture in *Seeing What You Say*.",
        "Karpathy's `dataset_coco.json` decides each image's split (its `restval` counts as train), not the "
        "SpokenCOCO file that listed the recording.",
    ),
    "flickr8k": (
        "Flickr8kAudio",
        "Flickr8k images with the Flickr8k Audio Caption Corpus (Harwath and Glass, 2015): five spoken captions "
        "per image, the zero-shot evaluation set of *Seeing What You Say* (its test split's 5k prompts).",
        "Flickr8k's own image lists: `Flickr_8k.trainImages.txt`, `devImages` (here `validation`), `testImages`.",
    ),
}

TERMS = """\
This folder is a re-encoding of {name} for training and evaluation; it adds no licence of its own. The images
keep the terms of their source ({images}; the photographs' copyright stays with their owners) and the recordings
and captions those of the corpus's distributors. Check both before sharing this folder. The code that wrote it
(voxemoset) is MIT-licensed."""

_IMAGES = {"spokencoco": "MS COCO, whose images come from Flickr", "flickr8k": "Flickr8k, photographs from Flickr"}

_OWN_DESCRIPTIONS = {
    "id": "utterance id: the corpus name and the id of its recording",
    "split": "train, validation or test",
    "image": "the image (original JPEG/PNG bytes when RGB, else RGB PNG)",
    "image_id": "image id (file stem)",
    "emotion": "always null: human readings carry no intended emotion (the column keeps VoxEmoset's layout)",
    "caption": "the caption that was read",
    "caption_index": "which of the image's captions",
    "audio": f"the human recording, FLAC {OUT_RATE} Hz mono",
    "speaker": "the reader's id in the corpus",
    "source_split": "the corpus's own split name (Karpathy's train/restval/val/test, Flickr8k's train/dev/test)",
}


def split_figures(data: Path) -> tuple[dict[str, SplitStats], dict[str, dict]]:
    """Per split: its shards' SplitStats (num_bytes: Parquet's uncompressed size) and its images, speakers and
    hours, read from three columns of each shard."""
    stats: dict[str, SplitStats] = {}
    extra: dict[str, dict] = {}
    for split, paths in list_dataset_shards(data).items():
        s, images, speakers, seconds = SplitStats(), set(), set(), 0.0
        for path in paths:
            shard = pq.ParquetFile(path)
            meta = shard.metadata
            s.rows += meta.num_rows
            s.num_bytes += sum(meta.row_group(k).total_byte_size for k in range(meta.num_row_groups))
            s.files.append(path.name)
            s.file_bytes += path.stat().st_size
            cols = shard.read(columns=["image_id", "speaker", "duration_s"])
            images.update(cols.column("image_id").to_pylist())
            speakers.update(cols.column("speaker").to_pylist())
            seconds += sum(d for d in cols.column("duration_s").to_pylist() if d is not None)
        stats[split] = s
        extra[split] = {"images": len(images), "speakers": len(speakers), "hours": seconds / 3600}
    order = {name: k for k, name in enumerate(SPLITS)}
    ordered = sorted(stats, key=lambda n: order.get(n, len(order)))
    return {n: stats[n] for n in ordered}, {n: extra[n] for n in ordered}


# The splits the paper trains on, per corpus, and their size at full scale (the paper's SpokenCOCO: 118k images,
# 591k utterances, Karpathy train + restval + val, test held out).
PAPER_TRAINING = {"spokencoco": (("train", "validation"), "118k images and 591k utterances in the full corpus")}


def paper_training(name: str, stats: dict[str, SplitStats], extra: dict[str, dict]) -> str:
    """The card's line on what the paper trains on from this corpus, counted here; empty for other corpora."""
    if name not in PAPER_TRAINING:
        return ""
    splits, full = PAPER_TRAINING[name]
    rows = sum(stats[s].rows for s in splits if s in stats)
    images = sum(extra[s]["images"] for s in splits if s in extra)  # Karpathy's splits share no image
    return (f"The paper trains on {' + '.join(splits)} (Karpathy train + restval + val), test held out: "
            f"{images} images and {rows} utterances here ({full}); `configs/paper_train.yaml` pools them.\n")  # fmt: skip


def card_text(name: str, data: Path, summary: dict) -> str:
    """The README.md of corpus `name` whose shards are in `data`; `summary` is the corpus run's (rows, rejects)."""
    pretty, about, split_rule = ABOUT[name]
    stats, extra = split_figures(data)
    described = {
        "pretty_name": f"{pretty} (voxemoset layout)",
        "license": "other",
        "language": ["en"],
        "task_categories": ["text-to-image", "automatic-speech-recognition"],
        "tags": ["speech", "speech-to-image", "spoken-captions", name],
    }
    header = yaml.safe_dump(hub_header(described, corpus_features(), stats), sort_keys=False, width=1000)
    split_rows = [
        [n, s.rows, extra[n]["images"], extra[n]["speakers"], f"{extra[n]['hours']:.2f}", len(s.files),
         f"{s.file_bytes / 1e6:.1f} MB"]
        for n, s in stats.items()
    ]  # fmt: skip
    rejects = summary.get("rejects", {})
    reject_rows = [[f"`{reason}`", count] for reason, count in rejects.items()] or [["(none)", 0]]
    columns = [*PUBLISHED_COLUMNS, *EXTRA_COLUMNS]
    column_rows = [[f"`{c}`", _OWN_DESCRIPTIONS.get(c) or DESCRIPTIONS[c]] for c in columns]
    code = code_version()
    parts = [
        f"---\n{header}---\n",
        f"# {pretty}, in VoxEmoset's row layout\n",
        about + " Written by `voxemoset corpus " + name + "` in the published row layout of VoxEmoset, so "
        "`datasets`, `voxemoset train` and `voxemoset evaluate` read both alike.\n",
        "## Splits\n",
        split_rule + "\n",
        md_table(["split", "utterances", "images", "speakers", "hours", "shards", "size"], split_rows) + "\n",
        paper_training(name, stats, extra),
        "## Rejected utterances\n",
        f"{sum(rejects.values())} utterances listed by the corpus were left out; each is a row of "
        "`rejects/data/*.parquet` with its reason and the file it concerns.\n",
        md_table(["reason", "utterances"], reject_rows) + "\n",
        "## Columns\n",
        md_table(["column", "meaning"], column_rows) + "\n",
        "## Terms\n",
        TERMS.format(name=pretty, images=_IMAGES[name]) + "\n",
        "## Provenance\n",
        f"Written by voxemoset {code['voxemoset']}, commit `{commit_label(code)}`.\n",
    ]
    return "\n".join(parts)


def write_card(folder: Path, name: str, summary: dict) -> Path:
    """Write (atomically) and return `<folder>/README.md` for corpus `name`."""
    path = Path(folder) / CARD
    text = card_text(name, Path(folder) / "data", summary)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
