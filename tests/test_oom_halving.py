"""Out of GPU memory, a batched model call halves its batch and runs again (models/oom.py), in the real paths.

The error is injected into each tiny real model's inner batched call (F5's `sample`, funasr's Emotion2vec
`inference`, Whisper's and LLaVA's `generate`): a batch of more than LIMIT items raises torch's CUDA
OutOfMemoryError, which a CPU can make and raise. A run configured at batch size 4 must then give exactly what
a run configured at 2 gives, never try 4 again, and at batch size 1 let the error through.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from voxemoset.config import parse_config
from voxemoset.models.oom import run_halving
from voxemoset.stages.captions import SCHEMA as CAPTIONS_SCHEMA
from voxemoset.store.atomic import write_parquet
from voxemoset.store.runner import list_shards, run_stage, stage_dir

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB"
LIMIT = 2  # the largest batch that "fits"
CAPTIONS = ["A red bus drives past the old church at noon.", "Two dogs run along a wide sandy beach.",
            "An old man reads a paper on a bench."]  # fmt: skip


class Inject:
    """Stands in for a model's inner batched call: notes each batch's size and fails any larger than `limit`."""

    def __init__(self, inner, size_of, limit: int = LIMIT):
        self.inner, self.size_of, self.limit, self.sizes = inner, size_of, limit, []

    def __call__(self, *args, **kwargs):
        self.sizes.append(self.size_of(*args, **kwargs))
        if self.sizes[-1] > self.limit:
            raise torch.OutOfMemoryError(OOM)
        return self.inner(*args, **kwargs)

    @property
    def failed(self) -> int:
        return sum(n > self.limit for n in self.sizes)


def inject_f5(synth, limit: int = LIMIT) -> Inject:
    synth.sample = Inject(synth.sample, lambda items, seeds: len(items), limit)
    return synth.sample


def inject_emotion2vec(scorer, limit: int = LIMIT) -> Inject:
    net = scorer.model.model  # funasr's AutoModel runs `net.inference(data_in=[clips of one batch], ...)`
    net.inference = Inject(net.inference, lambda **kw: len(kw["data_in"]), limit)
    return net.inference


def inject_generate(model, limit: int = LIMIT) -> Inject:
    model.generate = Inject(model.generate, lambda *a, **kw: (a[0] if a else kw["input_ids"]).shape[0], limit)
    return model.generate


class _FlatQuality:
    """DNSMOS is not halved (ONNX Runtime, one window a run) and is slow on a CPU: a fixed stand-in here."""

    def score(self, clips):
        return [dict.fromkeys(("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"), 3.0) for _ in clips]


def _config(root, out, batch: int):
    return parse_config({
        "out": str(out),
        "sources": {"cremad": str(root / "CREMA-D")},
        "references": {"corpora": ["cremad"]},
        "speech": {"checkpoint": str(root / "f5"), "vocoder": str(root / "vocos"), "device": "cpu", "nfe_step": 4,
                   "batch_size": batch, "seed": 3},
        # The random models fail every gate: each utterance is regenerated once, in one batched round.
        "gates": {"emotion_model": str(root / "e2v"), "emotion_batch_size": batch, "max_attempts": 2,
                  "whisper": {"model": str(root / "whisper"), "batch_size": batch, "max_new_tokens": 4},
                  "signal": {"min_dbfs": -120, "max_clipped_fraction": 1.0, "min_s": 0.1}},
    })  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_torch_thread):
    """Tiny F5 + Vocos, emotion2vec and Whisper; CREMA-D references; captions in shards of 6 and 3."""
    from voxemoset.fixtures.speech import build_cremad_tree
    from voxemoset.models.tiny import write_emotion2vec, write_f5tts, write_vocos, write_whisper
    from voxemoset.stages.references import ReferencesStage

    root = tmp_path_factory.mktemp("oom")
    write_f5tts(root / "f5"), write_vocos(root / "vocos"), write_emotion2vec(root / "e2v")
    write_whisper(root / "whisper")
    build_cremad_tree(root / "CREMA-D", per_split=1)
    run_stage(ReferencesStage(), _config(root, root / "inputs", 4), root / "inputs")
    captions = stage_dir(root / "inputs", "captions")
    for shard, images in {"00000": [("img-a", "train", "sadness"), ("img-b", "test", "anger")],
                          "00001": [("img-c", "test", "enjoyment")]}.items():  # fmt: skip
        rows = [{"caption_id": f"{img}-c{i}", "image_id": img, "split": split, "emotion": emo, "emoset_emotion": emo,
                 "caption_index": i, "caption": text, "n_words": len(text.split()), "caption_attempts": 1,
                 "caption_seed": 1, "caption_model": "fixture"}
                for img, split, emo in images for i, text in enumerate(CAPTIONS)]  # fmt: skip
        write_parquet(captions / f"{shard}.parquet", pa.Table.from_pylist(rows, CAPTIONS_SCHEMA))
    return root


def _run(root, name: str, batch: int, stage, source: str = "inputs"):
    """`stage` in a copy of root/source, configured at `batch`: its output folder."""
    out = root / name
    shutil.copytree(root / source, out)
    run_stage(stage, _config(root, out, batch), out)
    return out


def _same_output(a, b, stage: str) -> None:
    for sub in ("", "rejects"):
        left, right = list_shards(stage_dir(a, stage) / sub), list_shards(stage_dir(b, stage) / sub)
        assert [p.name for p in left] == [p.name for p in right] and left
        for p, q in zip(left, right, strict=True):
            assert pq.read_table(p).equals(pq.read_table(q)), f"{stage}/{sub}/{p.name} differs"


@pytest.fixture(scope="module")
def speech_runs(world):
    """The speech stage at batch 4 with F5 out of memory above 2, and at batch 2 without."""
    from voxemoset.models.f5tts import make_synthesizer
    from voxemoset.stages.speech import SpeechStage
    from voxemoset.stages.speech import stage as speech_stage

    made = []

    def synth(cfg):
        made.append(make_synthesizer(cfg))
        inject_f5(made[-1])
        return made[-1]

    with pytest.MonkeyPatch.context() as mp:
        # A chunk of one batch: the chunks cut at 4 and at 2 differ, so the stage has to start over.
        mp.setattr(speech_stage, "CHUNK_BATCHES", 1)
        halved = _run(world, "speech-halved", 4, SpeechStage(synth=synth))
        plain = _run(world, "speech-plain", 2, SpeechStage())
    return halved, plain, made


def test_speech_stage_equals_a_run_at_the_halved_batch(speech_runs):
    halved, plain, (synth,) = speech_runs
    _same_output(halved, plain, "speech")
    # 4 failed once, in the first shard; everything after (both shards) ran at 2, the size the synthesizer kept.
    assert synth.sample.sizes[0] == 4 and synth.sample.failed == 1 and synth.batch_size == 2
    assert max(synth.sample.sizes[1:]) == 2


def test_gates_stage_equals_a_run_at_the_halved_batch(world, speech_runs):
    """Emotion2vec, Whisper and a regeneration's F5 all run out of memory at 4; the gates equal a run at 2."""
    from voxemoset.models.emotion2vec import Emotion2vecScorer
    from voxemoset.models.f5tts import make_synthesizer
    from voxemoset.models.whisper_asr import WhisperTranscriber
    from voxemoset.stages.gates import GateModels, GatesStage

    injected: dict[str, Inject] = {}

    def gate_models(cfg, inject: bool):
        g = cfg.gates
        emotion = Emotion2vecScorer(g.emotion_model, g.emotion_device, g.emotion_batch_size)
        asr = WhisperTranscriber(**g.whisper.model_dump())
        if inject:
            injected.update(emotion=inject_emotion2vec(emotion), asr=inject_generate(asr.model))
        return GateModels(emotion, _FlatQuality(), asr)

    def synth(cfg):
        model = make_synthesizer(cfg.speech)
        injected["f5"] = inject_f5(model)
        return model

    shutil.copytree(speech_runs[1], world / "gates-inputs")  # the speech stage's output at batch 2
    halved = _run(world, "gates-halved", 4, GatesStage(lambda c: gate_models(c, True), synth), "gates-inputs")
    plain = _run(world, "gates-plain", 2, GatesStage(lambda c: gate_models(c, False)), "gates-inputs")
    _same_output(halved, plain, "gates")
    assert set(injected) == {"emotion", "asr", "f5"}  # every utterance failed its gates: a retry was synthesized
    for name, inj in injected.items():
        assert inj.sizes[0] > LIMIT and inj.failed == 1 and max(inj.sizes[1:]) == LIMIT, name


def test_at_batch_size_one_the_error_goes_on(world):
    """Sizes 4, 2, 1 each tried once, then torch's error itself (a transient one for the shard task)."""
    from voxemoset.models.emotion2vec import Emotion2vecScorer
    from voxemoset.models.whisper_asr import WhisperTranscriber
    from voxemoset.stages.speech import SpeechStage

    synths = []

    def synth(cfg):
        from voxemoset.models.f5tts import make_synthesizer

        synths.append(make_synthesizer(cfg))
        inject_f5(synths[-1], limit=0)
        return synths[-1]

    # Not a failed item per request, nor "every synthesis failed": the shard fails with the OOM, nothing written.
    with pytest.raises(torch.cuda.OutOfMemoryError):
        _run(world, "speech-oom", 4, SpeechStage(synth=synth))
    assert synths[0].sample.sizes == [4, 2, 1] and not list_shards(stage_dir(world / "speech-oom", "speech"))
    clips = [(0.1 * np.random.default_rng(i).standard_normal(16000)).astype(np.float32) for i in range(5)]
    emotion = Emotion2vecScorer(world / "e2v", batch_size=4)
    asr = WhisperTranscriber(str(world / "whisper"), batch_size=4, max_new_tokens=4)
    for call, inj in ((emotion.score, inject_emotion2vec(emotion, 0)), (asr.transcribe, inject_generate(asr.model, 0))):
        with pytest.raises(torch.cuda.OutOfMemoryError):
            call(clips)
        assert inj.sizes == [4, 2, 1]


class _Model:
    batch_size = 5


def test_run_halving_halves_logs_and_leaves_other_errors_alone(caplog):
    model, sizes = _Model(), []

    def call(size):
        sizes.append(size)
        if size > 1:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes")
        return "done"

    with caplog.at_level(logging.WARNING, logger="voxemoset.models.oom"):
        assert run_halving(model, call, "tiny") == "done"
    assert sizes == [5, 2, 1] and model.batch_size == 1
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["tiny", "tiny"]
    model.batch_size = 4
    with pytest.raises(ValueError):
        run_halving(model, lambda size: int("not a number"), "tiny")
    assert model.batch_size == 4


def test_transformers_captions_equal_a_run_at_the_halved_batch(tmp_path, one_torch_thread):
    from PIL import Image

    from voxemoset.config import CaptionsConfig
    from voxemoset.models.captioners.llava_transformers import TransformersCaptioner
    from voxemoset.models.tiny import write_llava_onevision
    from voxemoset.stages.captions import CaptionModel, default_lexicon, rules_of
    from voxemoset.stages.captions.stage import caption_images
    from voxemoset.stages.captions.validate import load_lexicon

    path = write_llava_onevision(tmp_path / "llava")
    images = {f"img-{i}": Image.new("RGB", (64 + 8 * i, 48), (40 * i, 100, 50)) for i in range(5)}
    results = []
    for batch, inject in ((4, True), (2, False)):
        cfg = CaptionsConfig(device="cpu", batch_size=batch, max_new_tokens=6, max_attempts=2)
        captioner = TransformersCaptioner.load(path, "Describe.", cfg, "tiny")
        inj = inject_generate(captioner.model) if inject else None
        model = CaptionModel(captioner, load_lexicon(default_lexicon()), rules_of(cfg))
        results.append(caption_images(images, model, cfg))
        if inj:
            assert inj.sizes[0] == 4 and inj.failed == 1 and captioner.batch_size == 2
    assert results[0] == results[1]
