"""`gates` stage: judge each utterance, regenerate failures (new seed, then new reference) up to a budget.

Every round of attempts of a shard is persisted as it finishes, as a round of the job's work folder (kept by
the runner), so a killed run resumes where it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.audio import decode_audio_bytes
from voxemoset.config import Config, output_settings, speech_settings
from voxemoset.models.protocols import Synthesizer
from voxemoset.stages.gates.attempts import candidate, finish, load_history, output_schema, record_round, same_reference
from voxemoset.stages.gates.judge import GateModels
from voxemoset.stages.gates.references import ReferencePool
from voxemoset.stages.gates.regenerate import regenerate
from voxemoset.store.keys import model_identity
from voxemoset.store.runner import (
    Plan,
    ShardJob,
    ShardOutput,
    StageBase,
    stage_dir,
    upstream_jobs,
    verified_shards,
)


class _Models:
    """Scorers loaded once; the synthesizer and the reference pool only when a retry needs them."""

    def __init__(self, config: Config, gate_models: GateModels, synth_factory: Callable[[], Synthesizer]):
        self.config, self.gate, self._synth_factory = config, gate_models, synth_factory
        self._synth: Synthesizer | None = None
        self._refs: ReferencePool | None = None
        self._lock = threading.Lock()  # shard tasks in threads share this: load each thing once

    def synth(self) -> Synthesizer:
        """The synthesizer, loaded on first use."""
        with self._lock:
            if self._synth is None:
                self._synth = self._synth_factory()
        return self._synth

    def references(self) -> ReferencePool:
        """Every reference's metadata, read on first use; the audio of those a retry picks, when it does."""
        with self._lock:
            if self._refs is None:
                self._refs = ReferencePool(stage_dir(self.config.out, "references"))
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
    return GateModels(emotion=emotion, quality=quality, asr=asr)


def _default_synth(config: Config) -> Synthesizer:
    from voxemoset.models.f5tts import make_synthesizer

    return make_synthesizer(config.speech)


class GatesStage(StageBase):
    """Speech shards -> judged utterances (kept rows) and rejects carrying their best attempt's scores."""

    name = "gates"
    # 2: retries go through the shared synthesis path (clips clipped to [-1, 1], a failed synthesis is a failed
    # attempt) and take their seeds and reference order from derive_seed. 3: WER after Whisper's English
    # normaliser (numbers, spellings, contractions), so stored `wer` values and wer_high verdicts change.
    version = "3"
    uses_gpu = True
    reject_schema = pa.schema(
        [("emo_pred", pa.string()), ("emo_conf", pa.float64()), ("dnsmos_ovrl", pa.float64()), ("wer", pa.float64())]
    )

    def __init__(
        self,
        gate_models: Callable[[Config], GateModels] | None = None,
        synth: Callable[[Config], Synthesizer] | None = None,
    ):
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
        history = load_history(work)
        by_id = {u["id"]: u for u in utts}
        first = [u for u in utts if u["id"] not in history]
        if first:
            cands = [candidate(u, 1, u["tts_seed"], same_reference(u)) for u in first]
            clips = [decode_audio_bytes(u["audio"]["bytes"])[0] for u in first]
            record_round(work, history, cands, clips, model.gate, config.gates)
        while True:
            todo = [by_id[i] for i, a in history.items() if i in by_id and not any(x["passed"] for x in a)
                    and len(a) < config.gates.max_attempts]  # fmt: skip
            if not todo:
                break
            cands, clips = regenerate(todo, history, model.references(), model.synth(), config.gates)
            record_round(work, history, cands, clips, model.gate, config.gates)
        return finish(utts, history, output_schema(speech.schema))
