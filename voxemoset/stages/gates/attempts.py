"""Attempts of a shard: candidate rows, each round judged and persisted as it finishes, and the final table."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from voxemoset.audio import OUT_RATE, audio_cell
from voxemoset.config import GatesConfig
from voxemoset.models.synthesis import SynthesisFailure
from voxemoset.rows import CAPTION_COLUMNS
from voxemoset.stages.gates.judge import GateModels, best_attempt, judge
from voxemoset.store.stage import ShardOutput
from voxemoset.store.work import WorkDir

CARRY = ("id", *CAPTION_COLUMNS, "speed")
ATTEMPT_FIELDS = ("attempt", "tts_seed", "reference_id", "reference_corpus", "reference_speaker", "reference_text")
SCORES = ("emo_pred", "emo_conf", "emo_target_conf", "emo_scores", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
          "dnsmos_p808", "asr_text", "wer", "signal", "fail_reason", "passed")  # fmt: skip
LOG_FIELDS = ("attempt", "tts_seed", "reference_id", "fail_reason", "emo_pred", "emo_conf", "dnsmos_ovrl", "wer")
GATE_COLUMNS = pa.schema(
    [("attempts", pa.int32()), ("emo_pred", pa.string()), ("emo_conf", pa.float64()),
     ("emo_target_conf", pa.float64()), ("emo_scores", pa.string()), ("dnsmos_ovrl", pa.float64()),
     ("dnsmos_sig", pa.float64()), ("dnsmos_bak", pa.float64()), ("dnsmos_p808", pa.float64()),
     ("asr_text", pa.string()), ("wer", pa.float64()), ("gate_log", pa.string())]
)  # fmt: skip


def same_reference(u: dict) -> dict:
    """The reference fields of a speech row, for an attempt that keeps its reference."""
    return {k: u[k] for k in ("reference_id", "reference_corpus", "reference_speaker", "reference_text")}


def candidate(u: dict, attempt: int, seed: int, ref: dict) -> dict:
    """Attempt `attempt` of utterance `u`, spoken with `seed` in the voice of `ref`, before judging."""
    return {**{k: u[k] for k in CARRY}, "attempt": attempt, "tts_seed": seed, **ref}


def record_round(
    work: WorkDir,
    history: dict[str, list[dict]],
    cands: list[dict],
    clips: list[np.ndarray | SynthesisFailure],
    models: GateModels,
    cfg: GatesConfig,
) -> None:
    """Judge one round and persist it before anything else happens (the resume point)."""
    judge(cands, clips, models, cfg)
    for c, x in zip(cands, clips, strict=True):
        made = not isinstance(x, SynthesisFailure)
        c["audio"] = audio_cell(c["id"], x) if made else None
        c["duration_s"] = round(len(x) / OUT_RATE, 4) if made else None
    work.save_round(pa.Table.from_pylist([_attempt_row(c) for c in cands]))
    for c in cands:
        history.setdefault(c["id"], []).append(c)


def _attempt_row(c: dict) -> dict:
    return {k: c.get(k) for k in (*CARRY, *ATTEMPT_FIELDS, *SCORES, "synthesis_error", "audio", "duration_s")}


def load_history(work: WorkDir) -> dict[str, list[dict]]:
    """Utterance id -> its attempts saved so far, in round order."""
    history: dict[str, list[dict]] = {}
    for table in work.rounds():
        for row in table.to_pylist():
            history.setdefault(row["id"], []).append(row)
    return history


def output_schema(speech: pa.Schema) -> pa.Schema:
    """The speech stage's columns, then the gates' figures: one schema for every gates shard."""
    return pa.schema([f for f in speech if f.name not in GATE_COLUMNS.names] + list(GATE_COLUMNS))


def _log_entry(a: dict) -> dict:
    entry = {k: a.get(k) for k in LOG_FIELDS}
    if a.get("synthesis_error"):  # only attempts that made no clip carry one
        entry["synthesis_error"] = a["synthesis_error"]
    return entry


def finish(utts: list[dict], history: dict[str, list[dict]], schema: pa.Schema) -> ShardOutput:
    """Each utterance's passing attempt as a kept row, or its best failure as a reject with its scores."""
    rows, rejects = [], []
    for u in utts:
        attempts = sorted(history[u["id"]], key=lambda a: a["attempt"])
        best = best_attempt(attempts)
        log = [_log_entry(a) for a in attempts]
        row = {**u, **{k: best.get(k) for k in (*ATTEMPT_FIELDS, *SCORES, "audio", "duration_s")}}
        row.update(attempts=len(attempts), gate_log=json.dumps(log))
        if best["passed"]:
            rows.append({k: row.get(k) for k in schema.names})
        else:
            rejects.append({"source": u["id"], "reason": f"gates_{best['fail_reason']}", "detail": row["gate_log"],
                            **{k: best.get(k) for k in ("emo_pred", "emo_conf", "dnsmos_ovrl", "wer")}})  # fmt: skip
    return ShardOutput(pa.Table.from_pylist(rows, schema=schema), rejects)
