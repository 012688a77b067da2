"""`gates` stage: judge each utterance, regenerate failures (new seed, then new reference) up to a budget.

Every round of attempts of a shard is persisted as it finishes, as a round of the job's work folder (kept by
the runner), so a killed run resumes where it stopped. That folder is keyed by what makes the attempts and their
scores (the speech shard, references, models, seeds), not by the thresholds: attempt k of an utterance is always
the same clip, so after a threshold change the stored attempts are judged again, and only an utterance that now
fails every stored attempt, with budget left, is synthesized and scored anew. The scorers load only then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from importlib.metadata import version

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.audio import decode_audio_bytes
from voxemoset.config import Config, output_settings, speech_settings
from voxemoset.models.devices import onnx_providers
from voxemoset.models.f5tts_files import synthesis_identity
from voxemoset.models.protocols import Synthesizer
from voxemoset.stages.gates.attempts import candidate, finish, load_history, output_schema, record_round, same_reference
from voxemoset.stages.gates.judge import GateModels
from voxemoset.stages.gates.references import ReferencePool
from voxemoset.stages.gates.regenerate import regenerate
from voxemoset.store.keys import model_identity
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, job_key
from voxemoset.store.threads import pin_cpu_threads
from voxemoset.store.upstream import Upstream

# Settings that only judge stored scores: changing them re-judges, never re-scores (the work folder outlives them).
VERDICT_SETTINGS = ("require_emotion", "min_emotion_conf", "min_dnsmos_ovrl", "max_wer", "max_attempts")


class _Models:
    """Scorers, the synthesizer and the reference pool, each loaded once, when a shard first needs it."""

    def __init__(
        self, config: Config, gate_factory: Callable[[], GateModels], synth_factory: Callable[[], Synthesizer]
    ):
        self._threads = config.orchestration.cpu_threads
        self._gate_factory, self._synth_factory = gate_factory, synth_factory
        self._gate: GateModels | None = None
        self._synth: Synthesizer | None = None
        self._refs: ReferencePool | None = None
        self._lock = threading.Lock()  # shard tasks in threads share this: load each thing once
        self.load_s = 0.0  # seconds spent loading so far: a shard's stats carry what it waited for

    def _loaded(self, name: str, factory: Callable[[], object]):
        with self._lock:
            if getattr(self, name) is None:
                t0 = time.perf_counter()
                setattr(self, name, factory())
                self.load_s += time.perf_counter() - t0
                # funasr sets torch's threads as it loads emotion2vec (to 4): mid-shard, that would change how the
                # shard's later clips are computed (float sums follow the thread count), so the runner's count holds.
                pin_cpu_threads(self._threads)
            return getattr(self, name)

    @property
    def gate(self) -> GateModels:
        """The scorers, loaded on first use."""
        return self._loaded("_gate", self._gate_factory)

    def synth(self) -> Synthesizer:
        """The synthesizer, loaded on first use."""
        return self._loaded("_synth", self._synth_factory)

    def references(self, shards: list[str]) -> ReferencePool:
        """Every reference's metadata, read on first use; the audio of those a retry picks, when it does."""
        with self._lock:
            if self._refs is None or self._refs.shards != shards:
                self._refs = ReferencePool(shards)
        return self._refs


def _default_gate_models(config: Config) -> GateModels:
    from voxemoset.models.dnsmos import DnsmosScorer
    from voxemoset.models.emotion2vec import Emotion2vecScorer

    g = config.gates
    asr = None
    if g.asr:
        from voxemoset.models.whisper_asr import WhisperTranscriber

        asr = WhisperTranscriber(**g.whisper.model_dump())
    quality = DnsmosScorer(providers=onnx_providers(g.dnsmos_device))
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
    inputs = ("speech", "references")
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

    def plan(self, config: Config, upstream: Upstream) -> Plan:
        g = config.gates
        # Retries run F5 (its settings and files) and the scorers (their files, by content), and may speak with
        # any reference of an utterance's split: a shard reads the references shards of its splits.
        models = {"emotion": model_identity(g.emotion_model), "asr": model_identity(g.whisper.model) if g.asr else None,
                  "quality": f"speechmos {version('speechmos')}", "speech": speech_settings(config.speech),
                  "synthesis": synthesis_identity(config.speech.checkpoint, config.speech.vocab_file,
                                                  config.speech.vocoder)}  # fmt: skip
        settings = output_settings(g)
        key = job_key(self, settings, models, None)
        scoring = {k: v for k, v in settings.items() if k not in VERDICT_SETTINGS}
        work_key = job_key(self, scoring, models, "attempts")
        refs = upstream.shards("references")
        split_of = {s.name: set(pq.read_table(s.path, columns=["split"]).column("split").to_pylist()) for s in refs}
        jobs = []
        for s in upstream.shards("speech"):
            splits = set(pq.read_table(s.path, columns=["split"]).column("split").to_pylist())
            reads = (("speech", s.name), *(("references", r) for r, held in split_of.items() if held & splits))
            inputs = {"speech": str(s.path), "references": [str(r.path) for r in refs]}
            jobs.append(ShardJob(s.name, key, inputs, reads=reads, work_key=work_key))
        return Plan(jobs)

    def load(self, config: Config) -> _Models:
        return _Models(config, lambda: self._gate_models(config), lambda: self._synth(config))

    def process(self, job: ShardJob, model: _Models, config: Config) -> ShardOutput:
        g, speech = config.gates, pq.read_table(job.inputs["speech"])
        utts = speech.to_pylist()
        work = job.work
        assert work is not None, "the runner gives every job its work folder"
        history = load_history(work, g)  # attempts stored by any earlier run, judged under these thresholds
        by_id = {u["id"]: u for u in utts}
        first = [u for u in utts if u["id"] not in history]
        scored = synthesized = 0
        loaded_before = model.load_s
        new_s = 0.0  # making and scoring new attempts, model loads included: what a threshold change may still cost
        if first:
            t0 = time.perf_counter()
            cands = [candidate(u, 1, u["tts_seed"], same_reference(u)) for u in first]
            clips = [decode_audio_bytes(u["audio"]["bytes"])[0] for u in first]
            scored += record_round(work, history, cands, clips, model.gate, g)
            new_s += time.perf_counter() - t0
        while True:
            # Attempts past the budget (stored under a larger one) do not count.
            todo = [by_id[i] for i, a in history.items() if i in by_id and not any(x.passed for x in a[: g.max_attempts])
                    and len(a) < g.max_attempts]  # fmt: skip
            if not todo:
                break
            t0 = time.perf_counter()
            pool = model.references(job.inputs["references"])
            cands, clips = regenerate(todo, history, pool, model.synth(), g)
            synthesized += len(cands)
            scored += record_round(work, history, cands, clips, model.gate, g)
            new_s += time.perf_counter() - t0
        kept = {i: a[: g.max_attempts] for i, a in history.items()}
        out = finish(utts, kept, output_schema(speech.schema))
        out.stats.update(scored=scored, synthesized=synthesized, new_attempts_s=round(new_s, 3),
                         model_load_s=round(model.load_s - loaded_before, 3))  # fmt: skip
        return out
