"""`speech`: batched F5-TTS synthesis (tiny DiT + tiny Vocos) against F5's own path, and the stage end to end."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from tests.builders import stage_table
from voxemoset.config import parse_config
from voxemoset.errors import MissingWeightsError
from voxemoset.models.f5tts import F5Synthesizer, f5_reference
from voxemoset.models.f5tts_files import locate_f5, locate_vocos
from voxemoset.models.protocols import SynthRequest
from voxemoset.stages.captions import SCHEMA as CAPTIONS_SCHEMA
from voxemoset.stages.speech import SpeechStage
from voxemoset.store.atomic import write_parquet
from voxemoset.store.runner import list_shards, plan_stage, run_stage, stage_dir

# Batched vs one-at-a-time: same math on padded tensors, so only float rounding differs. Measured on this
# CPU: <= 2e-7 absolute on waveforms peaking near 0.05; asserted with room to spare.
BATCH_ATOL = 1e-5
NFE = 8


@pytest.fixture(scope="module")
def weights(tiny_models):
    """Tiny F5 (its zero-initialised output layers filled with noise, so the DiT shapes the result) + tiny Vocos."""
    return tiny_models["f5tts"], tiny_models["vocos"]


@pytest.fixture(scope="module")
def synth(weights):
    return F5Synthesizer.from_files(*weights, nfe_step=NFE, batch_size=4, device="cpu")


def _requests(seed: int = 100) -> list[SynthRequest]:
    rng = np.random.default_rng(0)
    refs = [(1.5, "Hello there"), (2.2, "Don't forget a jacket."), (3.0, "It is eleven o'clock"), (1.1, "Kids talk")]
    texts = ["A red bus drives past the old church.", "Two dogs run on a wide sandy beach under a grey sky.",
             "Hi.", "A small boat."]  # fmt: skip
    return [
        SynthRequest(text, (0.05 * rng.standard_normal(int(24000 * s))).astype(np.float32), ref_text, seed + i)
        for i, (text, (s, ref_text)) in enumerate(zip(texts, refs, strict=True))
    ]


def _expected_samples(req: SynthRequest) -> int:
    """F5's duration rule, written out: frames after the reference, times the hop, less Vocos' one-frame edge."""
    audio, ref_text = f5_reference(req.ref_audio, req.ref_text)
    ref_text += " "  # infer_batch_process: a reference text ending in a 1-byte char gets a space
    ref_frames = len(audio) // 256
    speed = 0.3 if len(req.text.encode()) < 10 else req.speed
    duration = ref_frames + int(ref_frames / len(ref_text.encode()) * len(req.text.encode()) / speed)
    return (duration - ref_frames - 1) * 256


def test_length_follows_f5_duration_rule(synth):
    reqs = _requests()
    waves = synth.synthesize(reqs)
    for req, wave in zip(reqs, waves, strict=True):
        assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
        assert len(wave) == _expected_samples(req)
    assert synth.sample_rate == 24000


def test_same_seed_same_samples_other_seed_differs(synth):
    req = _requests()[0]
    a, b = synth.synthesize([req])[0], synth.synthesize([req])[0]
    c = synth.synthesize([SynthRequest(req.text, req.ref_audio, req.ref_text, req.seed + 1)])[0]
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_single_item_equals_f5_own_path(synth):
    """F5's infer_batch_process (what F5TTS.infer runs after seeding) and CFM.sample(seed=...) + Vocos."""
    from f5_tts.infer.utils_infer import infer_batch_process

    for req in _requests()[:2]:
        ours = synth.synthesize([req])[0]
        audio, ref_text = f5_reference(req.ref_audio, req.ref_text)
        torch.manual_seed(req.seed)
        theirs, sr, _ = next(infer_batch_process((torch.from_numpy(audio)[None], 24000), ref_text, [req.text],
                                                 synth.model, synth.vocoder, nfe_step=NFE, device="cpu",
                                                 progress=None))  # fmt: skip
        assert sr == 24000
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)  # bit-identical on this CPU
        # The lower-level call: CFM.sample(seed=...) then crop from the reference length and vocode.
        item = synth.prepare(req)
        x = torch.from_numpy(audio)[None]
        x = x * 0.1 / item.rms if item.rms < 0.1 else x
        with torch.inference_mode():
            mel, _ = synth.model.sample(cond=x, text=[item.tokens], duration=item.duration, steps=NFE,
                                        cfg_strength=2.0, sway_sampling_coef=-1.0, seed=req.seed)  # fmt: skip
            wave = synth.vocoder.decode(mel[:, item.ref_frames :].float().permute(0, 2, 1))[0]
        wave = wave * item.rms / 0.1 if item.rms < 0.1 else wave
        np.testing.assert_allclose(ours, wave.numpy(), rtol=0, atol=1e-6)


def test_batched_equals_one_at_a_time(synth):
    reqs = _requests(seed=7)
    singles = [synth.synthesize([r])[0] for r in reqs]
    for batch_size in (2, 4):
        synth.batch_size = batch_size
        try:
            batched = synth.synthesize(reqs)
        finally:
            synth.batch_size = 4
        for one, many in zip(singles, batched, strict=True):
            assert one.shape == many.shape
            np.testing.assert_allclose(many, one, rtol=0, atol=BATCH_ATOL)


def test_key_masked_attention_equals_f5_masked_processor(synth):
    """Our broadcast-mask attention gives what F5's own processor gives with attn_mask_enabled=True."""
    from voxemoset.models.f5tts import _KeyMaskedAttention

    tr = synth.model.transformer
    attn = tr.transformer_blocks[0].attn
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 50, tr.dim, generator=g)
    mask = torch.arange(50)[None] < torch.tensor([50, 31, 7])[:, None]
    rope = tr.rotary_embed.forward_from_seq_len(50)
    theirs_proc = attn.processor
    before = theirs_proc.attn_mask_enabled
    theirs_proc.attn_mask_enabled = True
    try:
        with torch.inference_mode():
            theirs = theirs_proc(attn, x, mask=mask, rope=rope)
            ours = _KeyMaskedAttention(theirs_proc)(attn, x, mask=mask, rope=rope)
    finally:
        theirs_proc.attn_mask_enabled = before
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_missing_weights_name_the_download(tmp_path):
    with pytest.raises(MissingWeightsError, match="hf download SWivid/F5-TTS F5TTS_v1_Base/model_1250000"):
        locate_f5(tmp_path / "nothing")
    with pytest.raises(MissingWeightsError, match="hf download charactr/vocos-mel-24khz --local-dir"):
        locate_vocos(tmp_path / "nothing")


# ---- the stage ----

CAPTIONS = ["A red bus drives past the old church at noon.", "Two dogs run along a wide sandy beach.",
            "An old man reads a paper on a bench."]  # fmt: skip


def _write_captions(out, images: dict[str, list[tuple[str, str]]]) -> None:
    """Captions-stage-shaped shards: shard name -> [(image_id, split+emotion)], three captions per image."""
    for shard, items in images.items():
        rows = [
            {"caption_id": f"{img}-c{i}", "image_id": img, "split": split, "emotion": emotion,
             "emoset_emotion": {"enjoyment": "amusement"}.get(emotion, emotion), "caption_index": i,
             "caption": text, "n_words": len(text.split()), "caption_attempts": 1, "caption_seed": 1,
             "caption_model": "fixture"}
            for img, (split, emotion) in items for i, text in enumerate(CAPTIONS)
        ]  # fmt: skip
        write_parquet(stage_dir(out, "captions") / f"{shard}.parquet", pa.Table.from_pylist(rows, CAPTIONS_SCHEMA))


@pytest.fixture(scope="module")
def stage_run(weights, tmp_path_factory):
    from voxemoset.fixtures.speech import build_speech_corpora
    from voxemoset.stages.references import ReferencesStage

    root = tmp_path_factory.mktemp("corpora")
    build_speech_corpora(root)
    out = tmp_path_factory.mktemp("out")
    cfg = parse_config({
        "out": str(out),
        "sources": {"cremad": str(root / "CREMA-D"), "ravdess": str(root / "RAVDESS")},
        "references": {"corpora": ["cremad", "ravdess"]},
        "speech": {"checkpoint": str(weights[0]), "vocoder": str(weights[1]), "device": "cpu", "nfe_step": NFE,
                   "batch_size": 3, "seed": 5},
    })  # fmt: skip
    run_stage(ReferencesStage(), cfg, out)
    # "neutral" is no VoxEmoset emotion, so no reference exists for it: its captions are rejected.
    _write_captions(out, {"00000": [("img-a", ("train", "anger")), ("img-b", ("test", "sadness"))],
                          "00001": [("img-c", ("test", "enjoyment")), ("img-d", ("train", "neutral"))]})  # fmt: skip
    summary = run_stage(SpeechStage(), cfg, out)
    return cfg, out, summary


def test_stage_rows_audio_and_fields(stage_run):
    cfg, out, summary = stage_run
    rows = stage_table(stage_dir(out, "speech")).to_pylist()
    refs = stage_table(stage_dir(out, "references")).to_pylist()
    refs = {r["reference_id"]: r for r in refs}
    assert summary["shards"] == 2 and summary["rows"] == 9 and summary["rejects"] == {"speech_no_reference": 3}
    assert len({r["id"] for r in rows}) == 9
    for r in rows:
        x, sr = sf.read(io.BytesIO(r["audio"]["bytes"]), always_2d=True)
        assert (
            sr == r["sample_rate"] == 16000
            and x.shape[1] == 1
            and sf.info(io.BytesIO(r["audio"]["bytes"])).format == "FLAC"
        )
        assert abs(x.shape[0] / 16000 - r["duration_s"]) < 1e-3 and r["audio"]["path"] == r["id"] + ".flac"
        ref = refs[r["reference_id"]]
        # no split crossing, and the reference carries the image's emotion
        assert (ref["split"], ref["emotion"]) == (r["split"], r["emotion"])
        assert (r["reference_corpus"], r["reference_speaker"], r["reference_text"]) == (
            ref["corpus"], ref["speaker"], ref["transcript"])  # fmt: skip
        assert (r["nfe_steps"], r["cfg_strength"], r["speed"]) == (NFE, 2.0, 1.0)
        assert 0 <= r["tts_seed"] < 2**31 and r["tts_model"].endswith("model.safetensors")
    # each caption of an image has its own seed
    assert len({(r["image_id"], r["tts_seed"]) for r in rows}) == 9


def test_stage_rerun_is_noop_and_config_change_is_noticed(stage_run):
    cfg, out, _ = stage_run
    before = {p.name: p.stat().st_mtime_ns for p in list_shards(stage_dir(out, "speech"))}
    again = run_stage(SpeechStage(synth=lambda c: pytest.fail("model loaded on a no-op rerun")), cfg, out)
    assert again["computed"] == 0 and again["skipped"] == 2
    assert {p.name: p.stat().st_mtime_ns for p in list_shards(stage_dir(out, "speech"))} == before
    changed = cfg.model_copy(update={"speech": cfg.speech.model_copy(update={"cfg_strength": 1.5})})
    plan_a, plan_b = plan_stage(SpeechStage(), cfg), plan_stage(SpeechStage(), changed)
    assert {j.key for j in plan_a.jobs}.isdisjoint(j.key for j in plan_b.jobs)
    batch = cfg.model_copy(update={"speech": cfg.speech.model_copy(update={"batch_size": 7})})
    assert [j.key for j in plan_stage(SpeechStage(), batch).jobs] == [j.key for j in plan_a.jobs]


def _copy_inputs(cfg, out, new_out):
    """The same captions and references under another output folder, and a config pointing there."""
    for name in ("captions", "references"):
        for p in list_shards(stage_dir(out, name)):
            write_parquet(stage_dir(new_out, name) / p.name, pq.read_table(p))
    return cfg.model_copy(update={"out": new_out})


class _FlakySynth:
    """Sine waves, except a caption containing 'dogs' fails: one bad item must not sink its shard."""

    sample_rate, batch_size = 24000, 4

    def synthesize(self, requests):
        if any("dogs" in r.text for r in requests):
            raise RuntimeError("synthesis blew up")
        return [np.sin(np.arange(24000, dtype=np.float32) * 0.05 * (1 + r.seed % 7)) * 0.3 for r in requests]


def test_failed_item_is_rejected_not_the_shard(stage_run, tmp_path):
    cfg, out, _ = stage_run
    other = _copy_inputs(cfg, out, tmp_path)
    summary = run_stage(SpeechStage(synth=lambda c: _FlakySynth()), other, tmp_path)
    assert summary["rejects"] == {"speech_no_reference": 3, "speech_synthesis_failed": 3}
    assert summary["rows"] == 6
    rejects = stage_table(stage_dir(tmp_path, "speech") / "rejects")
    failed = [r for r in rejects.to_pylist() if r["reason"] == "speech_synthesis_failed"]
    assert all(r["source"].endswith("-c1") and "blew up" in r["detail"] for r in failed)


class _BrokenSynth(_FlakySynth):
    def synthesize(self, requests):
        raise RuntimeError("CUDA error: device lost")


def test_model_failing_everywhere_fails_the_shard(stage_run, tmp_path):
    cfg, out, _ = stage_run
    with pytest.raises(RuntimeError, match="every synthesis"):
        run_stage(SpeechStage(synth=lambda c: _BrokenSynth()), _copy_inputs(cfg, out, tmp_path), tmp_path)
    assert not list_shards(stage_dir(tmp_path, "speech"))
