"""`references` stage on the fixture corpora: counts, transcripts (tiny Whisper for MEAD), prepared audio."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tests.builders import stage_table
from voxemoset.audio import decode_audio_bytes
from voxemoset.config import parse_config
from voxemoset.stages.references import ReferencesStage
from voxemoset.store.runner import run_stage, stage_dir


@pytest.fixture(scope="module")
def speech_root(tmp_path_factory):
    from voxemoset.fixtures.speech import build_speech_corpora

    root = tmp_path_factory.mktemp("speech")
    return root, build_speech_corpora(root)


@pytest.fixture(scope="module")
def whisper_dir(tiny_models):
    return tiny_models["whisper"]


@pytest.fixture(scope="module")
def built(speech_root, whisper_dir, tmp_path_factory):
    root, made = speech_root
    out = tmp_path_factory.mktemp("refs")
    cfg = parse_config(
        {
            "out": str(out),
            "sources": {"cremad": str(root / "CREMA-D"), "ravdess": str(root / "RAVDESS"), "mead": str(root / "MEAD")},
            "references": {"shard_size": 8, "whisper": {"model": str(whisper_dir), "max_new_tokens": 12}},
        }
    )
    summary = run_stage(ReferencesStage(), cfg, out)
    table = stage_table(stage_dir(out, "references"))
    rejects = stage_table(stage_dir(out, "references") / "rejects")
    return cfg, summary, table.to_pylist(), rejects.to_pylist(), made


def test_counts_per_corpus_emotion_and_split(built):
    _, summary, rows, rejects, made = built
    usable = {m["key"] for m in made if m["kind"] == "clip"}
    too_short = {r["source"] for r in rejects if r["reason"] == "references_too_short"}
    assert {r["reference_id"] for r in rows} | {m["key"] for m in made if m["path"] in too_short} == usable
    counts = Counter((r["corpus"], r["split"]) for r in rows)
    # 2 train + 2 test clips per emotion and corpus; the fixture's shortest espeak clip is too short.
    assert sum(counts.values()) == 60 - len(too_short) and len(too_short) <= 2
    assert {r["emotion"] for r in rows} == {"enjoyment", "anger", "disgust", "fear", "sadness"}
    assert summary["rejects"]["cremad_known_bad_clip"] == 1 and summary["rejects"]["cremad_not_in_split"] == 1
    assert summary["filtered"]["cremad_unused_emotion_NEU"] == 1


def test_transcripts_from_tables_and_tiny_whisper(built, whisper_dir):
    cfg, _, rows, _, _ = built
    by_id = {r["reference_id"]: r for r in rows}
    assert by_id["cremad-1005-WSI-HAP-XX"]["transcript"] == "We'll stop in a couple of minutes"
    assert by_id["cremad-1005-WSI-HAP-XX"]["transcript_source"] == "corpus"
    rav = [r for r in rows if r["corpus"] == "ravdess"]
    assert {r["transcript"] for r in rav} <= {"Kids are talking by the door", "Dogs are sitting by the door"}
    mead = [r for r in rows if r["corpus"] == "mead"]
    assert mead and all(r["transcript_source"] == "asr" and r["transcript"] for r in mead)
    # What is stored is what the tiny Whisper says for the prepared clip.
    import soxr

    from voxemoset.models.whisper_asr import WhisperTranscriber

    asr = WhisperTranscriber(str(whisper_dir), max_new_tokens=12)
    x, sr = decode_audio_bytes(mead[0]["audio"]["bytes"])
    assert asr.transcribe([soxr.resample(x, sr, 16000)]) == [mead[0]["transcript"]]


def test_audio_prepared_for_f5(built):
    cfg, _, rows, _, _ = built
    for r in rows:
        x, sr = decode_audio_bytes(r["audio"]["bytes"])
        assert sr == 24000 == r["sample_rate"] and x.ndim == 1
        assert abs(len(x) / sr - r["duration_s"]) < 1e-3
        assert cfg.references.prep.min_s <= r["duration_s"] <= cfg.references.prep.max_s
        assert np.max(np.abs(x)) <= cfg.references.prep.peak_limit + 1e-3
        assert r["sex"] in ("male", "female") and r["speaker"].startswith(r["corpus"])


def test_second_run_is_a_noop(built):
    cfg, _, _, _, _ = built
    assert run_stage(ReferencesStage(), cfg, cfg.out)["computed"] == 0


@pytest.mark.parametrize(
    "signal, reason",
    [
        (np.zeros(48000, np.float32), "silent"),
        (np.clip(np.sin(np.arange(48000) / 3.0) * 4, -1, 1).astype(np.float32), "clipped"),
        (np.full(48000, np.nan, np.float32), "not_finite"),
        ((0.1 * np.sin(np.arange(8000) / 3.0)).astype(np.float32), "too_short"),
        ((0.1 * np.sin(np.arange(16000 * 14) / 3.0)).astype(np.float32), "too_long"),
    ],
)
def test_bad_clips_are_rejected_with_reason(signal, reason):
    from voxemoset.config import PrepConfig
    from voxemoset.stages.references.prep import AudioReject, prepare_reference

    with pytest.raises(AudioReject) as e:
        prepare_reference(signal, 16000, PrepConfig())
    assert e.value.reason == reason


def test_shard_threads_share_one_whisper_load(built):
    """Two MEAD shards in two task threads reach Whisper at once: it is loaded once, without a race
    (concurrent `from_pretrained` calls break each other: "Cannot copy out of meta tensor")."""
    import threading

    cfg = built[0]
    clip = np.zeros(16000, dtype=np.float32)
    for _ in range(4):  # unguarded, most rounds failed
        shared, errors, texts = ReferencesStage().load(cfg), [], []

        def use(model=shared, errors=errors, texts=texts):
            try:
                texts.append(model.transcribe([clip]))
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(e))

        threads = [threading.Thread(target=use) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(texts) == 2 and texts[0] == texts[1]
