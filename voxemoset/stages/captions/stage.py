"""`captions` stage: three validated, emotion-free captions per image, asked again with new seeds on failure."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from voxemoset.config import CaptionsConfig, Config, output_settings
from voxemoset.models.captioners.answer_table import TableCaptioner, table_identity
from voxemoset.models.captioners.llava import resolve_model
from voxemoset.models.protocols import Captioner
from voxemoset.models.resolve import model_label
from voxemoset.resources import prompt_path
from voxemoset.rows import CAPTION_FIELDS
from voxemoset.seeds import derive_seed
from voxemoset.stages.captions.backends import load_captioner
from voxemoset.stages.captions.prompt import expressions_path, lexicon_path, read_text, sha256_text
from voxemoset.stages.captions.validate import Rules, Verdict, load_lexicon, validate_answer, words_of
from voxemoset.store.keys import model_identity
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase
from voxemoset.store.upstream import Upstream, each_shard

SCHEMA = pa.schema(
    [
        ("caption_id", pa.string()),
        *CAPTION_FIELDS,
        ("caption_attempts", pa.int32()),
        ("caption_seed", pa.int64()),
        ("caption_model", pa.string()),
    ]
)
IMAGE_COLUMNS = ["image_id", "split", "emotion", "emoset_emotion", "image"]
DETAIL_CHARS = 500
# Why an image is rejected unasked: its answer-table line cannot be read (the detail says how).
CAPTIONS_TABLE_BAD_ROW = "captions_table_bad_row"


@dataclass
class CaptionModel:
    """What `load` hands to `process`: the backend plus the validation it is judged by."""

    captioner: Captioner
    lexicon: frozenset[str]
    rules: Rules
    # Images whose answer-table line is unusable: rejected with the line's problem, never asked.
    bad_rows: dict[str, str] = field(default_factory=dict)


def rules_of(cfg: CaptionsConfig) -> Rules:
    """The validation limits of a captions config, with the visible-expression words it bans."""
    path = expressions_path(cfg)
    if path is not None:
        read_text(path, "captions.expressions")  # one clear error when the list is missing
    banned = load_lexicon(path) if path is not None else frozenset()
    return Rules(cfg.min_words, cfg.max_words, cfg.max_similarity, banned, frozenset(cfg.checks))


def stage_key_config(cfg: CaptionsConfig) -> dict:
    """The captions config as keyed: everything that can change an answer, plus prompt and lexicon text."""
    data = output_settings(cfg)  # speed-only settings (batch size, device, server knobs) change no answer
    # The files' contents key the stage, not their paths: editing the prompt recaptions, moving it does not.
    # The table backend reads stored answers: no prompt is asked, so none keys it (nor need its file exist).
    data["prompt"] = None if cfg.backend == "table" else sha256_text(read_text(prompt_path(cfg), "captions.prompt"))
    data["lexicon"] = sha256_text(read_text(lexicon_path(cfg), "captions.lexicon"))
    data.pop("expressions", None)
    if (expressions := expressions_path(cfg)) is not None:
        data["expressions"] = sha256_text(read_text(expressions, "captions.expressions"))
    return data


def decode(data: bytes) -> Image.Image:
    """Stored image bytes (RGB JPEG/PNG from the images stage) to a loaded PIL image."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def caption_images(
    images: dict[str, Image.Image], model: CaptionModel, cfg: CaptionsConfig
) -> dict[str, tuple[int, int, str, Verdict]]:
    """Caption every image, re-asking failures with fresh seeds: image_id -> (attempts, seed, answer, verdict).

    A captioner out of memory halves its batch and redoes the call that failed (models/oom.py); the shard then
    starts over at the new size, so it is captioned exactly as a run configured with that batch size.
    """
    while True:
        size = batch_of(model, cfg)
        results = _caption_at(images, model, cfg, size)
        if batch_of(model, cfg) == size:
            return results


def batch_of(model: CaptionModel, cfg: CaptionsConfig) -> int:
    """Images per caption call: the configured batch, or less once the captioner has halved its own."""
    return min(cfg.batch_size, getattr(model.captioner, "batch_size", cfg.batch_size))


def _caption_at(
    images: dict[str, Image.Image], model: CaptionModel, cfg: CaptionsConfig, size: int
) -> dict[str, tuple[int, int, str, Verdict]]:
    results: dict[str, tuple[int, int, str, Verdict]] = {}
    pending = list(images)
    for attempt in range(1, cfg.max_attempts + 1):
        for k in range(0, len(pending), size):
            batch = pending[k : k + size]
            seeds = [derive_seed(cfg.seed, image_id, attempt) for image_id in batch]
            answers = model.captioner.caption([images[i] for i in batch], seeds, ids=batch)
            if batch_of(model, cfg) != size:
                return results  # halved: the caller starts over
            for image_id, seed, answer in zip(batch, seeds, answers, strict=True):
                results[image_id] = (attempt, seed, answer, validate_answer(answer, model.lexicon, model.rules))
        pending = [i for i in pending if not results[i][3].ok]
        if not pending:
            break
    return results


class CaptionsStage(StageBase):
    """Images shard k -> captions shard k: one row per caption, rejects for images out of attempts."""

    name = "captions"
    version = "1"
    inputs = ("images",)
    schema = SCHEMA
    uses_gpu = True
    reject_schema = pa.schema([("attempts", pa.int32())])

    def model_id(self, cfg: CaptionsConfig) -> dict:
        """Identity of the captioning model: checkpoint files when local, the served name when remote."""
        if cfg.backend == "openai":
            return {"served": cfg.openai.model or cfg.model}
        if cfg.backend == "table":
            return table_identity(cfg.table)
        return model_identity(resolve_model(cfg.model))

    def plan(self, config: Config, upstream: Upstream) -> Plan:
        cfg = config.captions
        return Plan(each_shard(self, upstream, "images", stage_key_config(cfg), self.model_id(cfg)))

    def load(self, config: Config) -> CaptionModel:
        cfg = config.captions
        prompt = "" if cfg.backend == "table" else read_text(prompt_path(cfg), "captions.prompt")
        lexicon = load_lexicon(lexicon_path(cfg))
        captioner = load_captioner(cfg, prompt)
        bad_rows = captioner.bad if isinstance(captioner, TableCaptioner) else {}
        return CaptionModel(captioner, lexicon, rules_of(cfg), bad_rows)

    def process(self, job: ShardJob, model: CaptionModel, config: Config) -> ShardOutput:
        cfg = config.captions
        table = pq.read_table(job.inputs, columns=IMAGE_COLUMNS)
        meta = {r["image_id"]: r for r in table.drop_columns(["image"]).to_pylist()}
        ids, blobs = table["image_id"].to_pylist(), table["image"].to_pylist()
        rejects = [
            {"source": i, "reason": CAPTIONS_TABLE_BAD_ROW, "detail": model.bad_rows[i][:DETAIL_CHARS], "attempts": 0}
            for i in ids
            if i in model.bad_rows
        ]
        images = {i: decode(img["bytes"]) for i, img in zip(ids, blobs, strict=True) if i not in model.bad_rows}
        results = caption_images(images, model, cfg)
        label = f"table:{cfg.table.name}" if cfg.backend == "table" else model_label(cfg.model)
        rows = []
        for image_id, (attempts, seed, answer, verdict) in results.items():
            if not verdict.ok:
                detail = f"{verdict.detail} | answer: {answer}"[:DETAIL_CHARS]
                rejects.append({"source": image_id, "reason": verdict.reason, "detail": detail, "attempts": attempts})
                continue
            for index, caption in enumerate(verdict.captions):
                rows.append(
                    {
                        "caption_id": f"{image_id}-c{index}",
                        **meta[image_id],
                        "caption_index": index,
                        "caption": caption,
                        "n_words": len(words_of(caption)),
                        "caption_attempts": attempts,
                        "caption_seed": seed,
                        "caption_model": label,
                    }
                )
        stats = {
            "images": len(ids),
            "accepted": len(ids) - len(rejects),
            "answers": sum(r[0] for r in results.values()),
        }
        return ShardOutput(pa.Table.from_pylist(rows, schema=SCHEMA), rejects, stats)
