"""`references` stage: usable emotional reference clips from CREMA-D, MEAD, RAVDESS, prepared for F5-TTS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from voxemoset.audio import OUT_RATE, AudioReadError, encode_flac, load_audio, resample
from voxemoset.config import Config, PrepConfig, output_settings
from voxemoset.corpora import scan_corpus
from voxemoset.corpora.scan import inside_root
from voxemoset.models.resolve import model_label
from voxemoset.stages.references.prep import AudioReject, prepare_reference
from voxemoset.stages.references.transcribe import LazyTranscriber
from voxemoset.store.keys import file_fingerprint
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key
from voxemoset.store.upstream import Upstream

SCHEMA = pa.schema(
    [
        ("reference_id", pa.string()),
        ("corpus", pa.string()),
        ("speaker", pa.string()),
        ("sex", pa.string()),
        ("emotion", pa.string()),
        ("source_emotion", pa.string()),
        ("intensity", pa.string()),
        ("split", pa.string()),
        ("sentence", pa.string()),
        ("transcript", pa.string()),
        ("transcript_source", pa.string()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("input_rms_dbfs", pa.float64()),
        ("gain_db", pa.float64()),
        ("source_path", pa.string()),
    ]
)


def prepare_clip(entry: dict, prep: PrepConfig, root: Path) -> dict:
    """One clip to {"row", "audio" (prepared samples)} or a reject {"source", "reason", "detail"}.

    Whatever a file's bytes make the decoders or the checks raise becomes a reject; nothing outside `root`
    (its corpus folder) is read.
    """
    path = entry["path"]
    if not inside_root(path, root):
        # The reader rejects escaping clips already; checked again in case the tree changed since planning.
        return {"source": path, "reason": f"{entry['corpus']}_path_outside_root", "detail": os.path.realpath(path)}
    try:
        x, sr = load_audio(path)
        y, meta = prepare_reference(x, sr, prep)
        flac = encode_flac(y, prep.sample_rate)
    except AudioReadError as e:
        return {"source": path, "reason": "references_unreadable", "detail": e.reason}
    except AudioReject as e:
        return {"source": path, "reason": f"references_{e.reason}", "detail": e.detail}
    except (ValueError, RuntimeError) as e:  # e.g. soxr or libsndfile on values a header made up
        return {"source": path, "reason": "references_unreadable", "detail": f"{type(e).__name__}: {e}"}
    row = {
        "reference_id": entry["key"],
        **{k: entry[k] for k in ("corpus", "speaker", "sex", "emotion", "source_emotion", "intensity", "split")},
        "sentence": entry.get("sentence"),
        "transcript": entry.get("transcript"),
        "transcript_source": "corpus" if entry.get("transcript") else "asr",
        "duration_s": meta["duration_s"],
        "sample_rate": prep.sample_rate,
        "audio": {"bytes": flac, "path": entry["key"] + ".flac"},
        "input_rms_dbfs": meta["input_rms_dbfs"],
        "gain_db": meta["gain_db"],
        "source_path": path,
    }
    return {"row": row, "audio": y}


class ReferencesStage(StageBase):
    """Source corpora -> prepared reference rows, sharded by corpus and split."""

    name = "references"
    version = "1"
    schema = SCHEMA
    uses_cpu_threads = True  # Whisper transcribes MEAD

    def plan(self, config: Config, upstream: Upstream) -> Plan:
        cfg = config.references
        settings = output_settings(cfg)  # Whisper's device and batch size change no transcript
        whisper = model_label(cfg.whisper.model) if "mead" in cfg.corpora else None
        jobs, filtered = [], {}
        for corpus in cfg.corpora:
            scan = scan_corpus(corpus, config.sources)
            filtered.update(scan.filtered)
            groups: dict[str, list[dict]] = {}
            for clip in scan.items:
                groups.setdefault(clip.split, []).append(clip.to_row())
            for split, rows in sorted(groups.items()):
                rows.sort(key=lambda r: r["key"])
                for k in range(0, len(rows), cfg.shard_size):
                    chunk = rows[k : k + cfg.shard_size]
                    inputs = [[r, file_fingerprint(Path(r["path"]))] for r in chunk]
                    model = whisper if corpus == "mead" else None
                    jobs.append(
                        ShardJob(
                            f"{corpus}-{split}-{k // cfg.shard_size:05d}", job_key(self, settings, model, inputs), chunk
                        )
                    )
            problems = [{"source": p.source, "reason": p.reason, "detail": p.detail} for p in scan.problems]
            if problems:
                # A corpus's unusable files get a shard of their own: no rows, just their rejects.
                key = job_key(self, settings, None, problems)
                jobs.append(ShardJob(f"{corpus}-problems", key, [], tuple(problems)))
        return Plan(jobs, dict(sorted(filtered.items())))

    def load(self, config: Config) -> LazyTranscriber:
        return LazyTranscriber(config.references)

    def process(self, job: ShardJob, model: Any, config: Config) -> ShardOutput:
        cfg = config.references
        rows, rejects, needs_asr = [], [], []
        for entry in job.inputs:
            result = prepare_clip(entry, cfg.prep, getattr(config.sources, entry["corpus"]))
            if "reason" in result:
                rejects.append(result)
                continue
            row, y = result["row"], result["audio"]
            rows.append(row)
            if not row["transcript"]:
                needs_asr.append((row, resample(y, cfg.prep.sample_rate, OUT_RATE)))
        if needs_asr:
            texts = model.transcribe([audio for _, audio in needs_asr])
            for (row, _), text in zip(needs_asr, texts, strict=True):
                row["transcript"] = text
                if not text:
                    rows.remove(row)
                    rejects.append(
                        {"source": row["source_path"], "reason": "references_empty_transcript", "detail": ""}
                    )
        return ShardOutput(pa.Table.from_pylist(rows, schema=SCHEMA), rejects)
