"""The fast synthesis path (models/f5tts_fast.py) against the eager one, tiny F5 + tiny Vocos on the CPU:
bucket padding and the compiled DiT step give each item the eager audio; EPSS runs at fewer steps."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from voxemoset.config import SpeechConfig, is_speed_only, output_settings
from voxemoset.errors import UserError
from voxemoset.models.f5tts import F5Synthesizer, _masked_attention, make_synthesizer
from voxemoset.models.f5tts_fast import DiTStep, FastOptions, batch_fill, bucket_length, timesteps
from voxemoset.models.protocols import SynthRequest

# Same math on longer, masked tensors (and, compiled, inductor's fused kernels): only float rounding differs.
# Measured on this CPU (fp32, waveforms peaking near 0.06): padded or batched vs alone <= 6e-8 absolute,
# compiled vs eager <= 7e-8. Asserted with room for other CPUs' kernels.
ATOL = 1e-5
NFE = 8


@pytest.fixture(scope="module")
def weights(tiny_models):
    return tiny_models["f5tts"], tiny_models["vocos"]


def _synth(weights, **kw) -> F5Synthesizer:
    return F5Synthesizer.from_files(*weights, device="cpu", **{"nfe_step": NFE, "batch_size": 4, **kw})


@pytest.fixture(scope="module")
def eager(weights):
    return _synth(weights)


def _requests() -> list[SynthRequest]:
    """Four requests of 222 to 665 mel frames (reference + text, by F5's duration rule)."""
    rng = np.random.default_rng(0)
    refs = [(1.5, "Hello there"), (2.2, "Don't forget a jacket."), (3.0, "It is eleven o'clock"), (1.1, "Kids talk")]
    texts = ["A red bus drives past the old church.", "Two dogs run on a wide sandy beach under a grey sky.",
             "Hi.", "A small boat."]  # fmt: skip
    return [
        SynthRequest(text, (0.05 * rng.standard_normal(int(24000 * s))).astype(np.float32), ref_text, 100 + i)
        for i, (text, (s, ref_text)) in enumerate(zip(texts, refs, strict=True))
    ]


@pytest.fixture(scope="module")
def alone(eager):
    """The reference: each request synthesised by itself on the eager path (no padding, no mask)."""
    return [eager.synthesize([r])[0] for r in _requests()]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def test_bucket_length_pads_up_to_the_next_bucket():
    buckets = (256, 512, 1024)
    assert [bucket_length(n, buckets) for n in (1, 256, 257, 1000, 1024)] == [256, 256, 512, 1024, 1024]
    assert bucket_length(1500, buckets) == 1500  # past the largest bucket: unpadded
    assert bucket_length(300, ()) == 300


def test_batch_fill_rounds_compiled_bucketed_batches_to_powers_of_two():
    fast = FastOptions(compile=True, length_buckets=(256,))
    assert [n + batch_fill(n, 16, fast) for n in (1, 2, 3, 5, 9, 16)] == [1, 2, 4, 8, 16, 16]
    assert 3 + batch_fill(3, 3, fast) == 3  # never past batch_size
    assert batch_fill(3, 16, FastOptions(compile=True)) == batch_fill(3, 16, FastOptions(length_buckets=(256,))) == 0


def test_velocity_equals_dit_forward(eager):
    """f5tts_fast.velocity (text embedded beforehand) is DiT.forward(cfg_infer=True) plus guidance, with and
    without a padding mask."""
    tr = eager.model.transformer
    g = torch.Generator().manual_seed(0)
    x, cond = torch.randn(2, 50, 100, generator=g), torch.randn(2, 50, 100, generator=g)
    text, t = torch.randint(0, 100, (2, 20), generator=g), torch.tensor(0.3)
    for mask in (None, torch.arange(50)[None] < torch.tensor([[50], [37]])):
        with torch.inference_mode(), _masked_attention(tr, mask is not None):
            ref = eager._flow(x, cond, text, t, mask)
            tr.clear_cache()
            step = DiTStep(tr, eager.cfg_strength, compile=False)
            ours = step(step.embed(text, 50, mask), x, cond, t, mask)
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_bucket_padding_changes_no_item(weights, alone):
    """Each item alone, padded to a bucket, or in a batch padded to a bucket beside longer items: same audio."""
    reqs = _requests()
    padded = _synth(weights, fast=FastOptions(length_buckets=(256, 704)))
    singles = [padded.synthesize([r])[0] for r in reqs]  # 222 -> 256; 408, 528, 665 -> 704
    batched = padded.synthesize(reqs)  # one batch of four, padded to 704
    print(f"padded alone: {_max_diff(singles, alone):.1e}, padded batch: {_max_diff(batched, alone):.1e}")
    assert _max_diff(singles, alone) <= ATOL and _max_diff(batched, alone) <= ATOL


def test_compiled_equals_eager(weights, alone, caplog):
    """torch.compile'd DiT step, batch padded to one bucket: each item's eager audio, and the graph is reused.
    cuda_graphs is asked for too: on the CPU it is ignored with a warning."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    reqs = _requests()
    synth = _synth(weights, fast=FastOptions(compile=True, length_buckets=(768,), cuda_graphs=True))
    torch._dynamo.reset()
    counters.clear()
    with caplog.at_level(logging.WARNING, logger="voxemoset.models.f5tts_fast"):
        first = synth.synthesize(reqs)  # one batch of 4 at 768 frames, 8 steps: one graph
    assert "cuda_graphs needs" in caplog.text and not synth._step.cuda_graphs
    print(f"compiled, padded batch vs eager alone: {_max_diff(first, alone):.1e}")
    assert _max_diff(first, alone) <= ATOL
    reordered = synth.synthesize(reqs[::-1])[::-1]  # the same shapes again: no recompile, same audio
    assert _max_diff(reordered, first) <= ATOL
    three = synth.synthesize(reqs[:3])  # filled to four with a repeat of its longest: the same graph
    assert _max_diff(three, first[:3]) <= ATOL
    assert counters["stats"]["unique_graphs"] == 1


def test_epss_runs_fewer_steps_and_differs_from_nfe32(weights, eager):
    """EPSS's table at 7 steps, against uniform 7 steps and 32 steps. Random weights say nothing of quality: the
    test only pins that it runs and how far it moves the audio (relative RMS difference, printed)."""
    assert torch.equal(timesteps(7, True, "cpu", torch.float32) * 32, torch.tensor([0, 2, 4, 6, 8, 16, 24, 32.0]))
    assert torch.equal(timesteps(32, True, "cpu", torch.float32), timesteps(32, False, "cpu", torch.float32))
    req = _requests()[3]
    ref = _synth(weights, nfe_step=32).synthesize([req])[0]
    epss = _synth(weights, nfe_step=7).synthesize([req])[0]
    uniform = _synth(weights, nfe_step=7, epss=False).synthesize([req])[0]
    rel = {k: float(np.linalg.norm(w - ref) / np.linalg.norm(ref)) for k, w in (("epss7", epss), ("uniform7", uniform))}
    print(f"relative RMS difference from NFE 32: {rel}")
    assert epss.shape == ref.shape and np.isfinite(epss).all()
    assert rel["epss7"] > 1e-4 and not np.array_equal(epss, uniform)


def test_config_flags_reach_the_synthesizer(weights):
    cfg = SpeechConfig(checkpoint=weights[0], vocoder=weights[1], device="cpu", nfe_step=7, epss=False,
                       compile=True, length_buckets=(512, 1024), cuda_graphs=True)  # fmt: skip
    synth = make_synthesizer(cfg)
    assert synth.fast == FastOptions(compile=True, length_buckets=(512, 1024), cuda_graphs=True)
    assert not synth.epss and synth.nfe_step == 7
    fields = SpeechConfig.model_fields
    assert all(is_speed_only(fields[k]) for k in ("compile", "length_buckets", "cuda_graphs"))
    assert output_settings(cfg)["epss"] is False  # the step table changes the audio: it keys outputs


def test_compile_without_a_compiler_is_refused_at_load(weights, eager, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(UserError, match="needs a C.. compiler"):
        F5Synthesizer(eager.model, eager.vocoder, fast=FastOptions(compile=True))
    F5Synthesizer(eager.model, eager.vocoder, fast=FastOptions(length_buckets=(256,)))  # nothing to compile
