"""`gates` stage: judge each utterance, regenerate failures (new seed, then new reference) up to a budget.

Every round of attempts of a shard is persisted as it finishes, as a round of the job's work folder (kept by
the runner), so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soxr

from voxemoset.audio import OUT_RATE, TTS_RATE, decode_audio_bytes, encode_flac
from voxemoset.config import Config, output_settings, speech_settings
from voxemoset.gates.loop import GateModels, best_attempt, judge, retry_reference, retry_seed
from voxemoset.rows import CAPTION_COLUMNS
from voxemoset.store.keys import model_identity
from voxemoset.store.runner import (
    Plan,
    ShardJob,
    ShardOutput,
    StageBase,
    list_shards,
    stage_dir,
    upstream_jobs,
    verified_shards,
)
from voxemoset.store.work import WorkDir

CARRY = ("id", *CAPTION_COLUMNS, "speed")
ATTEMPT_FIELDS = ("attempt", "tts_seed", "reference_id", "reference_corpus", "reference_speaker", "reference_text")
SCORES = ("emo_pred", "emo_conf", "emo_target_conf", "emo_scores", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
          "dnsmos_p808", "asr_text", "wer", "signal", "fail_reason", "passed")  # fmt: skip


class _Models:
    """Scorers loaded once; the synthesizer and the references table only when a retry needs them."""

    def __init__(self, config: Config, gate_models: GateModels, synth_factory: Callable[[], Any]):
        self.config, self.gate, self._synth_factory = config, gate_models, synth_factory
        self._synth, self._refs = None, None
        self._lock = threading.Lock()  # shard tasks in threads share this: load each thing once

    def synth(self):
        with self._lock:
            if self._synth is None:
                self._synth = self._synth_factory()
        return self._synth

    def references(self) -> list[dict]:
        with self._lock:
            if self._refs is None:
                cols = ["reference_id", "corpus", "speaker", "split", "emotion", "transcript", "audio"]
                folder = stage_dir(self.config.out, "references")
                self._refs = [r for p in list_shards(folder) for r in pq.read_table(p, columns=cols).to_pylist()]
        return self._refs


def _default_gate_models(config: Config) -> GateModels:
    from voxemoset.models.dnsmos import DnsmosScorer
    from voxemoset.models.emotion2vec import Emotion2vecScorer

    g = config.gates
    asr = None
    if g.asr:
        from voxemoset.models.whisper_asr import WhisperTranscriber

        asr = WhisperTranscriber(
            g.asr_model, g.asr_device, batch_size=g.asr_batch_size, max_new_tokens=g.asr_max_new_tokens
        )
    quality = (
        DnsmosScorer(providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
        if g.dnsmos_device == "cuda"
        else DnsmosScorer()
    )
    emotion = Emotion2vecScorer(g.emotion_model, g.emotion_device, g.emotion_batch_size)
    return GateModels(emotion=_IdsIgnored(emotion), quality=quality, asr=asr)


class _IdsIgnored:
    """Adapts a production scorer to the judging call, which also passes attempt ids."""

    def __init__(self, scorer):
        self.scorer = scorer

    def score(self, clips, ids=None):
        return self.scorer.score(clips)


def _default_synth(config: Config):
    from voxemoset.speech.synth import make_synthesizer

    return make_synthesizer(config.speech)


class GatesStage(StageBase):
    """Speech shards -> judged utterances (kept rows) and rejects carrying their best attempt's scores."""

    name = "gates"
    version = "1"
    uses_gpu = True
    reject_schema = pa.schema(
        [("emo_pred", pa.string()), ("emo_conf", pa.float64()), ("dnsmos_ovrl", pa.float64()), ("wer", pa.float64())]
    )

    def __init__(self, gate_models: Callable[[Config], GateModels] | None = None, synth: Callable | None = None):
        self._gate_models = gate_models or _default_gate_models
        self._synth = synth or _default_synth

    def plan(self, config: Config) -> Plan:
        g = config.gates
        models = {"emotion": model_identity(g.emotion_model), "asr": g.asr_model if g.asr else None,
                  "speech": speech_settings(config.speech),
                  "references": [p.name for p, _ in verified_shards(config.out, "references", self.name)]}  # fmt: skip
        return Plan(upstream_jobs(self, config.out, "speech", output_settings(g), models))

    def load(self, config: Config) -> _Models:
        return _Models(config, self._gate_models(config), lambda: self._synth(config))

    def process(self, job: ShardJob, model: _Models, config: Config) -> ShardOutput:
        speech = pq.read_table(job.inputs)
        utts = speech.to_pylist()
        work = job.work
        assert work is not None, "the runner gives every job its work folder"
        history = _load_history(work)
        by_id = {u["id"]: u for u in utts}
        first = [u for u in utts if u["id"] not in history]
        if first:
            cands = [_candidate(u, 1, u["tts_seed"], _same_reference(u)) for u in first]
            clips = [decode_audio_bytes(u["audio"]["bytes"])[0] for u in first]
            _record_round(work, history, cands, clips, model, config)
        while True:
            todo = [by_id[i] for i, a in history.items() if i in by_id and not any(x["passed"] for x in a)
                    and len(a) < config.gates.max_attempts]  # fmt: skip
            if not todo:
                break
            cands, clips = _regenerate(todo, history, model, config)
            _record_round(work, history, cands, clips, model, config)
        return _finish(utts, history, output_schema(speech.schema))


def _same_reference(u: dict) -> dict:
    return {k: u[k] for k in ("reference_id", "reference_corpus", "reference_speaker", "reference_text")}


def _candidate(u: dict, attempt: int, seed: int, ref: dict) -> dict:
    return {**{k: u[k] for k in CARRY}, "attempt": attempt, "tts_seed": seed, **ref}


def _regenerate(todo: list[dict], history: dict, model: _Models, config: Config) -> tuple[list[dict], list[np.ndarray]]:
    from voxemoset.speech.synth import SynthRequest

    refs = model.references()
    by_ref = {r["reference_id"]: r for r in refs}
    cands, requests = [], []
    for u in todo:
        attempt = len(history[u["id"]]) + 1
        pool = [r for r in refs if (r["split"], r["emotion"]) == (u["split"], u["emotion"])]
        alt = retry_reference(u, attempt, pool, config.gates)
        ref = by_ref[u["reference_id"]] if alt is None else alt
        ref_fields = {"reference_id": ref["reference_id"], "reference_corpus": ref["corpus"],
                      "reference_speaker": ref["speaker"], "reference_text": ref["transcript"]}  # fmt: skip
        cands.append(_candidate(u, attempt, retry_seed(config.gates.seed, u["id"], attempt), ref_fields))
        audio, sr = decode_audio_bytes(ref["audio"]["bytes"])
        requests.append(SynthRequest(u["caption"], audio, ref["transcript"], cands[-1]["tts_seed"], u["speed"]))
    waves = model.synth().synthesize(requests)
    return cands, [soxr.resample(w, TTS_RATE, OUT_RATE).astype(np.float32) for w in waves]


def _record_round(work: WorkDir, history: dict, cands: list[dict], clips: list, model: _Models, config: Config) -> None:
    """Judge one round and persist it before anything else happens (the resume point)."""
    judge(cands, clips, model.gate, config.gates)
    for c, x in zip(cands, clips, strict=True):
        c["audio"] = {"bytes": encode_flac(x, OUT_RATE), "path": f"{c['id']}.flac"}
        c["duration_s"] = round(len(x) / OUT_RATE, 4)
    work.save_round(pa.Table.from_pylist([_attempt_row(c) for c in cands]))
    for c in cands:
        history.setdefault(c["id"], []).append(c)


def _attempt_row(c: dict) -> dict:
    return {k: c.get(k) for k in (*CARRY, *ATTEMPT_FIELDS, *SCORES, "audio", "duration_s")}


def _load_history(work: WorkDir) -> dict[str, list[dict]]:
    history: dict[str, list[dict]] = {}
    for table in work.rounds():
        for row in table.to_pylist():
            history.setdefault(row["id"], []).append(row)
    return history


GATE_COLUMNS = pa.schema(
    [("attempts", pa.int32()), ("emo_pred", pa.string()), ("emo_conf", pa.float64()),
     ("emo_target_conf", pa.float64()), ("emo_scores", pa.string()), ("dnsmos_ovrl", pa.float64()),
     ("dnsmos_sig", pa.float64()), ("dnsmos_bak", pa.float64()), ("dnsmos_p808", pa.float64()),
     ("asr_text", pa.string()), ("wer", pa.float64()), ("gate_log", pa.string())]
)  # fmt: skip


def output_schema(speech: pa.Schema) -> pa.Schema:
    """The speech stage's columns, then the gates' figures: one schema for every gates shard."""
    return pa.schema([f for f in speech if f.name not in GATE_COLUMNS.names] + list(GATE_COLUMNS))


def _finish(utts: list[dict], history: dict, schema: pa.Schema) -> ShardOutput:
    rows, rejects = [], []
    for u in utts:
        attempts = sorted(history[u["id"]], key=lambda a: a["attempt"])
        best = best_attempt(attempts)
        log = [{k: a.get(k) for k in ("attempt", "tts_seed", "reference_id", "fail_reason", "emo_pred", "emo_conf",
                                      "dnsmos_ovrl", "wer")} for a in attempts]  # fmt: skip
        row = {**u, **{k: best.get(k) for k in (*ATTEMPT_FIELDS, *SCORES, "audio", "duration_s")}}
        row.update(attempts=len(attempts), gate_log=json.dumps(log))
        if best["passed"]:
            rows.append({k: row.get(k) for k in schema.names})
        else:
            rejects.append({"source": u["id"], "reason": f"gates_{best['fail_reason']}", "detail": row["gate_log"],
                            **{k: best.get(k) for k in ("emo_pred", "emo_conf", "dnsmos_ovrl", "wer")}})  # fmt: skip
    return ShardOutput(pa.Table.from_pylist(rows, schema=schema), rejects)
