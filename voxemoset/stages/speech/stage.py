"""`speech` stage: each caption spoken by F5-TTS in the voice of a reference of its image's emotion and split."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.audio import OUT_RATE, audio_cell
from voxemoset.config import Config, SpeechConfig, speech_settings
from voxemoset.models.f5tts_files import locate_f5, synthesis_identity
from voxemoset.models.protocols import Synthesizer, SynthRequest
from voxemoset.models.synthesis import SynthesisFailure, synthesize_16k
from voxemoset.rows import CAPTION_COLUMNS, CAPTION_FIELDS, MEDIA, REFERENCE_FIELDS
from voxemoset.seeds import derive_seed
from voxemoset.stages.speech.assign import assign_references
from voxemoset.stages.speech.references import load_reference_audio, read_references
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key
from voxemoset.store.upstream import Upstream

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        *CAPTION_FIELDS,
        *REFERENCE_FIELDS,
        ("tts_seed", pa.int64()),
        ("tts_model", pa.string()),
        ("nfe_steps", pa.int32()),
        ("cfg_strength", pa.float64()),
        ("speed", pa.float64()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("audio", MEDIA),
    ]
)
CAPTION_KEYS = ["image_id", "caption_index", "split", "emotion"]
CHUNK_BATCHES = 8  # requests handed to the synthesizer at once, in batches: room to bucket by length


def utterance_id(image_id: str, caption_index: int, reference_id: str, seed: int) -> str:
    """Deterministic row id: what the utterance was made from."""
    return hashlib.sha256("\x1f".join(map(str, (image_id, caption_index, reference_id, seed))).encode()).hexdigest()[
        :20
    ]


def _pair(image_id: str, caption_index: int) -> str:
    return f"{image_id}\x1f{caption_index}"


@dataclass
class SpeechModel:
    """What `load` hands to `process`: the synthesizer and the model name rows record."""

    synth: Synthesizer
    label: str


def _default_synth(cfg: SpeechConfig) -> Synthesizer:
    from voxemoset.models.f5tts import make_synthesizer

    return make_synthesizer(cfg)


class SpeechStage(StageBase):
    """Captions shard k -> speech shard k: one 16 kHz utterance per caption, references assigned globally."""

    name = "speech"
    version = "2"  # 2: reference ordering keys from derive_seed
    inputs = ("captions", "references")
    schema = SCHEMA
    uses_gpu = True

    def __init__(self, synth: Callable[[SpeechConfig], Synthesizer] | None = None):
        self._synth = synth or _default_synth

    def model_id(self, cfg: SpeechConfig) -> dict:
        """Identity of checkpoint, vocab, architecture and vocoder (missing weights fail here, in one line)."""
        return synthesis_identity(cfg.checkpoint, cfg.vocab_file, cfg.vocoder)

    def plan(self, config: Config, upstream: Upstream) -> Plan:
        cfg = config.speech
        model = self.model_id(cfg)
        # Speed-only settings left out; the model files are keyed by content through `model`, not by path.
        settings = speech_settings(cfg)
        refs = read_references(upstream.shards("references"))
        by_id = {r["reference_id"]: r for r in refs}
        shards = {s.path: s for s in upstream.shards("captions")}
        captions = {p: pq.read_table(p, columns=CAPTION_KEYS).to_pylist() for p in shards}
        every = [c for rows in captions.values() for c in rows]
        assigned = assign_references(every, refs, cfg.seed, cfg.prefer_intensity, cfg.exclude_intensities)
        jobs = []
        for path, rows in captions.items():
            pairs = {
                _pair(c["image_id"], c["caption_index"]): assigned[(c["image_id"], c["caption_index"])] for c in rows
            }
            used = sorted({r for r in pairs.values() if r})
            # The assignment is global (every caption against every reference), so it keys each shard; each
            # reference spoken is keyed by its content, and the shards holding them are what the job reads.
            inputs = {"assigned": sorted(pairs.items()), "references": [[r, by_id[r]["content"]] for r in used]}
            info = {r: {k: by_id[r][k] for k in ("corpus", "speaker", "transcript", "shard", "row")} for r in used}
            work = {"captions": str(path), "assigned": pairs, "references": info}
            reads = (("captions", shards[path].name), *sorted({("references", by_id[r]["shard_name"]) for r in used}))
            jobs.append(ShardJob(path.stem, job_key(self, settings, model, inputs), work, reads=reads))
        return Plan(jobs)

    def load(self, config: Config) -> SpeechModel:
        f5 = locate_f5(config.speech.checkpoint, config.speech.vocab_file)
        return SpeechModel(self._synth(config.speech), f"{f5.checkpoint.parent.name}/{f5.checkpoint.name}")

    def process(self, job: ShardJob, model: SpeechModel, config: Config) -> ShardOutput:
        cfg, refs = config.speech, job.inputs["references"]
        audio = load_reference_audio(refs)
        rejects, todo = [], []
        for c in pq.read_table(job.inputs["captions"]).to_pylist():
            source = c.get("caption_id") or f"{c['image_id']}-c{c['caption_index']}"
            ref_id = job.inputs["assigned"].get(_pair(c["image_id"], c["caption_index"]))
            if ref_id is None:
                detail = f"no {c['split']} reference of emotion {c['emotion']}"
                rejects.append({"source": source, "reason": "speech_no_reference", "detail": detail})
            elif isinstance(audio[ref_id], str):
                rejects.append({"source": source, "reason": "speech_reference_unreadable", "detail": audio[ref_id]})
            else:
                seed = derive_seed(cfg.seed, c["image_id"], c["caption_index"])
                text = refs[ref_id]["transcript"] or ""
                todo.append((c, source, ref_id, SynthRequest(c["caption"], audio[ref_id], text, seed, cfg.speed)))
        rows, failures, start = [], [], time.perf_counter()
        clips = speak(model, [p[3] for p in todo])
        for (c, source, ref_id, req), clip in zip(todo, clips, strict=True):
            if isinstance(clip, SynthesisFailure):
                failures.append({"source": source, "reason": f"speech_{clip.reason}", "detail": clip.detail})
            else:
                rows.append(_row(c, ref_id, refs[ref_id], req, clip, model.label, cfg))
        if not rows and any(not f["detail"].startswith("ValueError") for f in failures):
            # Bad inputs raise ValueError; anything else failing everywhere is a broken model or device, not the
            # captions: fail the shard so a rerun retries instead of recording rejects for good.
            raise RuntimeError(f"speech: every synthesis in {job.name} failed, e.g. {failures[0]['detail']}")
        seconds = sum(r["duration_s"] for r in rows)
        wall = time.perf_counter() - start
        stats = {"utterances": len(rows), "audio_s": round(seconds, 2), "synth_s": round(wall, 2)}
        rows.sort(key=lambda r: (r["image_id"], r["caption_index"]))
        return ShardOutput(pa.Table.from_pylist(rows, schema=SCHEMA), rejects + failures, stats)


def model_batch(model: SpeechModel) -> int:
    """The synthesizer's batch size (1 for one without)."""
    return int(getattr(model.synth, "batch_size", 1))


def speak(model: SpeechModel, requests: list[SynthRequest]) -> list[np.ndarray | SynthesisFailure]:
    """Each request's 16 kHz clip or failure, CHUNK_BATCHES batches at a time, every chunk at one batch size.

    A synthesizer out of memory halves its batch and redoes the call that failed (models/oom.py); the chunks are
    cut by the batch size too, so the shard starts over here: its output is exactly that of a run at the new size.
    """
    while True:
        size, clips = model_batch(model), []
        for k in range(0, len(requests), size * CHUNK_BATCHES):
            clips += synthesize_16k(model.synth, requests[k : k + size * CHUNK_BATCHES])
            if model_batch(model) != size:
                break
        else:
            return clips


def _row(c: dict, ref_id: str, ref: dict, req: SynthRequest, y: np.ndarray, label: str, cfg: SpeechConfig) -> dict:
    uid = utterance_id(c["image_id"], c["caption_index"], ref_id, req.seed)
    return {
        "id": uid,
        **{k: c.get(k) for k in CAPTION_COLUMNS},
        "reference_id": ref_id,
        "reference_corpus": ref["corpus"],
        "reference_speaker": ref["speaker"],
        "reference_text": ref["transcript"],
        "tts_seed": req.seed,
        "tts_model": label,
        "nfe_steps": cfg.nfe_step,
        "cfg_strength": cfg.cfg_strength,
        "speed": req.speed,
        "duration_s": round(len(y) / OUT_RATE, 4),
        "sample_rate": OUT_RATE,
        "audio": audio_cell(uid, y),
    }
