"""A corpus as shard jobs of the one runner: keyed, atomic, resumable, with rejects, in the published layout.

`<out>/corpora/<name>/` holds `data/<split>-NNNNN-of-NNNNN.parquet` (what `datasets` and `train` read), its card
`README.md`, and, as every stage folder does, `rejects/data/…parquet` and the `_done/data/…json` markers. A split's
shard count is known when planning (all utterances are listed first), so shard names are final from the start.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from voxemoset.config import Config, output_settings
from voxemoset.corpora import HUMAN_READ, check_name, corpus_module, corpus_roots, scan_corpus
from voxemoset.corpora.export.card import write_card
from voxemoset.corpora.export.rows import ShardReader
from voxemoset.corpora.human_read import SPLITS, Utterance
from voxemoset.corpora.scan import Scan
from voxemoset.hub.shards import shard_name
from voxemoset.store.keys import file_fingerprint
from voxemoset.store.lock import out_lock
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, StageRunner, job_key
from voxemoset.store.upstream import Upstream
from voxemoset.store.verify import MARKER_DIR

log = logging.getLogger("voxemoset")

DATA_DIR = "data"
CORPUS_PREFIX = "corpus_"  # a corpus stage's name: corpus_<name> (shard tasks find their runner by it)
# The image checks of the `images` stage, applied to corpus images as well (one set of limits).
IMAGE_LIMITS = ("max_pixels", "max_file_bytes", "min_side")


def corpus_dir(out: Path, name: str) -> Path:
    """Where corpus `name` is written: `<out>/corpora/<name>` (its `data/` is the published dataset)."""
    return Path(out) / "corpora" / name


def corpus_settings(config: Config) -> dict:
    """The settings that key a corpus shard: the corpora section and the image limits."""
    images = output_settings(config.images)
    return {"corpora": output_settings(config.corpora), "images": {k: images[k] for k in IMAGE_LIMITS}}


def _by_split(scan: Scan[Utterance], limit: int | None) -> dict[str, list[Utterance]]:
    """Each split's utterances, an image's captions next to each other (so a shard reads each image once)."""
    found: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    for u in scan.items:
        found[u.split].append(u)
    for split, utts in found.items():
        utts.sort(key=lambda u: (u.image_id, u.caption_index, u.id))
        found[split] = utts[:limit] if limit else utts
    return found


class CorpusStage(StageBase):
    """One corpus reader's utterances -> published rows, `shard_size` utterances per shard of a split."""

    version = "1"
    reject_schema = pa.schema([("id", pa.string()), ("split", pa.string())])

    def __init__(self, corpus: str):
        self.corpus = corpus
        self.name = f"{CORPUS_PREFIX}{corpus}"

    def plan(self, config: Config, upstream: Upstream) -> Plan:
        scan = scan_corpus(self.corpus, config.sources)
        size, settings = config.corpora.shard_size, corpus_settings(config)
        fingerprints: dict[str, list] = {}  # an image is shared by ~5 captions: stat it once

        def fingerprint(u: Utterance) -> list:
            if u.image_path not in fingerprints:
                fingerprints[u.image_path] = file_fingerprint(Path(u.image_path))
            return [asdict(u), file_fingerprint(Path(u.wav_path)), fingerprints[u.image_path]]

        # Problems found while reading the corpus's lists go with the first shard (their own reject rows).
        problems = tuple({"source": p.source, "reason": p.reason, "detail": p.detail} for p in scan.problems)
        jobs = []
        for split, utts in _by_split(scan, config.corpora.limit_per_split).items():
            count = -(-len(utts) // size)
            for k in range(count):
                chunk = utts[k * size : (k + 1) * size]
                extra = problems if not jobs else ()
                key = job_key(self, settings, None, {"utterances": [fingerprint(u) for u in chunk], "problems": extra})
                name = f"{DATA_DIR}/{shard_name(split, k, count).removesuffix('.parquet')}"
                jobs.append(ShardJob(name, key, chunk, extra))
        if not jobs:  # nothing usable: an empty train shard still records why
            key = job_key(self, settings, None, {"utterances": [], "problems": problems})
            jobs.append(
                ShardJob(f"{DATA_DIR}/{shard_name(SPLITS[0], 0, 1).removesuffix('.parquet')}", key, [], problems)
            )
        return Plan(jobs, dict(sorted(scan.filtered.items())))

    def process(self, job: ShardJob, model: Any, config: Config) -> ShardOutput:
        image_root, audio_root = corpus_module(self.corpus).media_roots(*corpus_roots(self.corpus, config.sources))
        table, rejects = ShardReader(image_root, audio_root, config.images).rows(job.inputs)
        return ShardOutput(table, rejects, {"seconds": round(sum(table.column("duration_s").to_pylist()), 3)})


class CorpusRunner(StageRunner):
    """The stage runner, writing under `<out>/corpora/<name>/` with shard names inside `data/`."""

    def __init__(self, stage: CorpusStage, config: Config, out: Path):
        super().__init__(stage, config, out)
        self.dir = corpus_dir(out, stage.corpus)

    def finalize(self, plan: Plan, computed: int, run: dict | None = None) -> dict:
        """Drop shards of an older plan (another shard count makes other names), the runner's own finalize, then
        the card (whichever driver ran the shards: this process or the `corpus` flow's tasks)."""
        names = {j.name for j in plan.jobs}
        for folder, suffix in ((DATA_DIR, ".parquet"), (f"rejects/{DATA_DIR}", ".parquet"),
                               (f"{MARKER_DIR}/{DATA_DIR}", ".json")):  # fmt: skip
            for p in sorted((self.dir / folder).glob(f"*{suffix}")):
                if f"{DATA_DIR}/{p.name.removesuffix(suffix)}" not in names:
                    log.info("%s: removing %s, no longer planned", self.stage.name, p)
                    p.unlink()
        summary = super().finalize(plan, computed, run)
        write_card(self.dir, self.stage.corpus, summary)
        return summary


def corpus_runner(name: str, config: Config) -> CorpusRunner:
    """The runner that writes corpus `name` under `<out>/corpora/<name>/`."""
    return CorpusRunner(CorpusStage(check_name(name, HUMAN_READ)), config, config.out)


def run_corpus(name: str, config: Config, force: bool = False) -> dict:
    """Write corpus `name` under `<out>/corpora/<name>/` in this process (finished shards are skipped), then its
    dataset card `README.md`. Progress shows where a command turned it on (voxemoset/progress.py)."""
    with out_lock(config.out):
        runner = corpus_runner(name, config)
        return runner.drive(lambda todo: runner.run_all(todo, None), force)
