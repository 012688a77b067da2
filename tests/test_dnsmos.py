"""DnsmosScorer gives speechmos.dnsmos.run's scores, whatever the batch, order or input sample rate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from voxemoset.models import dnsmos_split as split
from voxemoset.models.dnsmos import SR, WINDOW_LEN, DnsmosScorer, MelFeatures, tile, window_starts

FIELDS = {"dnsmos_ovrl": "ovrl_mos", "dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_p808": "p808_mos"}
SENTENCES = [
    "Don't forget a jacket.",
    "The airplane is almost full, and we will stop in a couple of minutes.",
    "I think I have a doctor's appointment tomorrow morning at eleven o'clock.",
]


def speak(text: str, folder: Path) -> tuple[np.ndarray, int]:
    """espeak-ng speech at its own rate (22.05 kHz), float32 mono."""
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = folder / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    x, rate = sf.read(str(path), dtype="float32")
    return x, rate


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[tuple[np.ndarray, int]]:
    """Three espeak sentences at 22.05 kHz."""
    folder = tmp_path_factory.mktemp("espeak")
    return [speak(text, folder) for text in SENTENCES]


@pytest.fixture(scope="module")
def clips(speech) -> list[np.ndarray]:
    """Speech, sine, noise and silence at 16 kHz, 1.5 to 12 s long."""
    import soxr

    voice = [soxr.resample(x, rate, SR).astype(np.float32) for x, rate in speech]
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    out = [
        voice[0][: int(1.5 * SR)],  # tiled 8x: 3 windows
        voice[1],
        np.concatenate([voice[1], voice[2], voice[1]])[: 12 * SR],  # longer than a window: no tiling
        (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),  # 2.0 s: 7 windows, only 2 distinct
        rng.uniform(-0.3, 0.3, int(3.3 * SR)).astype(np.float32),
        np.zeros(int(4.7 * SR), dtype=np.float32),
    ]
    assert 1.5 <= min(len(x) for x in out) / SR and max(len(x) for x in out) / SR <= 12
    return out


@pytest.fixture(scope="module")
def scorer() -> DnsmosScorer:
    """One scorer (two ONNX sessions) shared by the tests."""
    return DnsmosScorer()


@pytest.fixture(scope="module")
def scores(scorer, clips) -> list[dict[str, float]]:
    """All clips scored in one call."""
    return scorer.score(clips)


def test_matches_speechmos(clips, scores):
    """Every field equals speechmos.dnsmos.run on the same clip within 1e-3."""
    from speechmos import dnsmos

    for i, (clip, ours) in enumerate(zip(clips, scores, strict=True)):
        ref = dnsmos.run(clip, sr=SR)
        for ours_key, ref_key in FIELDS.items():
            assert ours[ours_key] == pytest.approx(float(ref[ref_key]), abs=1e-3), (i, ours_key)


def test_batch_order_does_not_matter(scorer, clips, scores):
    """Reversed input gives the same scores per clip, and so does scoring a clip alone."""
    again = scorer.score(clips[::-1])[::-1]
    alone = scorer.score([clips[1]])[0]
    for a, b in zip(scores, again, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert alone == pytest.approx(scores[1], abs=1e-5)


def test_resamples_other_rates(scorer, speech, scores):
    """A 22.05 kHz clip is resampled with soxr, so it scores like its 16 kHz version."""
    x, rate = speech[1]
    assert rate == 22050
    ours = scorer.score([x], sr=rate)[0]
    assert ours == pytest.approx(scores[1], abs=1e-6)
    assert scorer.score([x], sr=SR)[0] != pytest.approx(ours, abs=1e-3)  # read as 16 kHz it differs


def test_mel_matches_librosa():
    """The vectorised P.808 features equal speechmos's librosa melspectrogram per window."""
    from speechmos.dnsmos import DNSMOS

    rng = np.random.default_rng(1)
    segments = (rng.standard_normal((2, 144000)) * 0.1).astype(np.float32)
    segments[1] *= np.linspace(0, 1, segments.shape[1], dtype=np.float32)
    ours = MelFeatures()(segments)
    ref = np.stack([DNSMOS.audio_melspec(None, s) for s in segments])
    assert ours.shape == ref.shape == (2, 900, 120)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_window_starts_follow_speechmos_rounding():
    """speechmos skips windows 7 to 23 (float rounding makes them one sample short); so do we."""
    assert window_starts(int(9.01 * SR)) == [0]
    assert window_starts(16 * SR) == [i * SR for i in range(7)]
    assert window_starts(30 * SR) == [i * SR for i in range(7)]
    assert window_starts(40 * SR) == [i * SR for i in [*range(7), *range(24, 31)]]


@pytest.mark.parametrize("bad", [np.zeros(0, np.float32), np.full(SR, 1.5, np.float32), np.zeros((2, SR))])
def test_rejects_bad_clips(scorer, bad):
    """Empty, out-of-range or multichannel input is refused, as speechmos refuses it."""
    with pytest.raises(ValueError):
        scorer.score([bad])


@pytest.fixture(scope="module")
def whole_model() -> DnsmosScorer:
    """The unsplit P.835 model, one worker: the reference the split path must reproduce."""
    pytest.importorskip("onnx")
    return DnsmosScorer(split_model=False, workers=1)


@pytest.mark.parametrize("seconds", [3.0, 12.0])
def test_split_matches_whole_model(scorer, whole_model, clips, seconds):
    """Trunk + mid once per span, head per window: the whole model's raw outputs per window, within 1e-5."""
    assert scorer.split_model
    x = np.tile(clips[2], 2)[: int(seconds * SR)]  # 3 s: tiled 4x, 3 windows; 12 s: 3 windows, not tiled
    y = tile(x)
    starts = window_starts(len(y))
    assert len(starts) == 3
    ours = np.array(scorer._p835_span(y, starts))
    ref = whole_model.p835.run(None, {"input_1": np.stack([y[s : s + WINDOW_LEN] for s in starts])})[0]
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # Spans cut short (one window each, two and one) give the same.
    cut = DnsmosScorer(span_windows=2, workers=1)
    parts = [*cut._p835_span(y, starts[:2]), *cut._p835_span(y, starts[2:])]
    np.testing.assert_allclose(np.array(parts), ref, atol=1e-5)
    assert scorer.score([x])[0] == pytest.approx(whole_model.score([x])[0], abs=1e-5)


def test_split_edges_are_exact(scorer):
    """A window's mid output is the span's slice except 3 frames at each end, which the edge pass fixes."""
    rng = np.random.default_rng(2)
    y = (rng.standard_normal(12 * SR) * 0.1).astype(np.float32)
    starts = window_starts(len(y))  # 0, 1 and 2 s
    run = lambda sess, a: sess.run(None, {sess.get_inputs()[0].name: a})[0]  # noqa: E731
    per_window = np.stack([run(scorer.mid, run(scorer.trunk, y[None, s : s + WINDOW_LEN]))[0] for s in starts])
    span = run(scorer.mid, run(scorer.trunk, y[None, : starts[-1] + WINDOW_LEN]))[0]
    middle = span[:, 25 : 25 + split.QUARTERS]  # window 1 starts 25 mid frames in
    diff = np.abs(middle - per_window[1]).max(axis=(0, 2))
    m = split.MID_EDGE
    assert (diff[:m] > 1e-3).all() and (diff[-m:] > 1e-3).all()  # the band is not smaller
    assert diff[m:-m].max() < 1e-5  # and not larger
    split_path = DnsmosScorer(workers=1)
    seen = []
    head = split_path.head

    class Spy:
        """The head session, keeping what the split path feeds it."""

        get_inputs = head.get_inputs

        def run(self, outputs, feed):
            seen.append(next(iter(feed.values())))
            return head.run(outputs, feed)

    split_path.head = Spy()
    split_path._p835_span(y, starts)
    np.testing.assert_allclose(seen[0], per_window, atol=1e-5)


def test_workers_do_not_change_scores(clips, scores):
    """One worker or two, the scores per clip are the same."""
    one = DnsmosScorer(workers=1).score(clips)
    for a, b in zip(one, scores, strict=True):
        assert a == pytest.approx(b, abs=1e-6)
