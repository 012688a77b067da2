"""Speech source readers (CREMA-D, RAVDESS, MEAD), EmoBox splits and audio loading, on espeak-ng fixtures."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxemoset.audio import AudioReadError, load_audio
from voxemoset.corpora import load_split
from voxemoset.corpora.cremad import cremad_key, scan_cremad
from voxemoset.corpora.emobox import load_sentences
from voxemoset.corpora.mead import mead_key, scan_mead
from voxemoset.corpora.ravdess import ravdess_key, scan_ravdess
from voxemoset.emotions import EMOTIONS
from voxemoset.errors import UserError
from voxemoset.fixtures.speech import build_speech_corpora

SCANNERS = {"cremad": (scan_cremad, "CREMA-D"), "ravdess": (scan_ravdess, "RAVDESS"), "mead": (scan_mead, "MEAD")}
# Five-emotion rows in EmoBox fold 1 (train + test) minus the clips present in the fixture tree
# (20 each, plus CREMA-D's known-bad clip, which is skipped rather than reported missing).
MISSING = {"cremad": 5 * 954 + 5 * 317 - 20 - 1, "ravdess": 5 * 160 + 5 * 32 - 20, "mead": 15998 + 5330 - 20}


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The three miniature corpora (read-only for tests) and the builder's description of them."""
    root = tmp_path_factory.mktemp("speech")
    return root, build_speech_corpora(root)


@pytest.fixture(scope="session")
def scans(speech):
    root, _ = speech
    return {corpus: scan(root / folder) for corpus, (scan, folder) in SCANNERS.items()}


def test_emobox_fold1_sizes():
    sizes = {c: Counter(e.split for e in load_split(c).values()) for c in ("cremad", "ravdess", "mead")}
    assert sizes == {
        "cremad": {"train": 5586, "test": 1856},
        "ravdess": {"train": 1200, "test": 240},
        "mead": {"train": 23800, "test": 7929},
    }
    assert load_split("ravdess")["ravdess-03-01-05-01-02-01-18"].relpath == "Actor_18/03-01-05-01-02-01-18.wav"


def test_keys_from_native_paths():
    assert cremad_key("/x/AudioWAV/1001_DFA_ANG_XX.wav") == "cremad-1001-DFA-ANG-XX"
    assert ravdess_key("Actor_18/03-01-05-01-02-01-18.wav") == "ravdess-03-01-05-01-02-01-18"
    assert mead_key("/d/M040/audio/neutral/level_1/034.m4a") == "mead-M040-neutral-level-1-034"
    for bad in (lambda: cremad_key("1001-DFA-ANG-XX.wav"), lambda: mead_key("M040/video/angry/level_1/001.m4a")):
        with pytest.raises(ValueError):
            bad()


def test_fixture_splits_match_emobox_fold1(speech):
    _, desc = speech
    assert Counter(d["kind"] for d in desc) == {"clip": 60, "neutral": 3, "known_bad": 1, "not_in_split": 1}
    for d in desc:
        if d["kind"] == "not_in_split":
            assert d["key"] not in load_split(d["corpus"])
        else:
            assert load_split(d["corpus"])[d["key"]].split == d["split"], d["key"]
            assert Path(d["path"]).is_file()


@pytest.mark.parametrize("corpus", ["cremad", "ravdess", "mead"])
def test_counts_per_emotion_and_split(scans, speech, corpus):
    scan = scans[corpus]
    assert len(scan.items) == 20
    assert Counter((c.emotion, c.split) for c in scan.items) == {(e, s): 2 for e in EMOTIONS for s in ("train", "test")}
    neutral = {"cremad": "NEU", "ravdess": "neutral", "mead": "neutral"}[corpus]
    assert scan.filtered == {f"{corpus}_unused_emotion_{neutral}": 1}
    expected = {d["key"]: d for d in speech[1] if d["corpus"] == corpus and d["kind"] == "clip"}
    assert {c.key: (c.emotion, c.split, c.path) for c in scan.items} == {
        k: (d["emotion"], d["split"], d["path"]) for k, d in expected.items()
    }
    reasons = Counter(p.reason for p in scan.problems)
    assert reasons[f"{corpus}_manifest_file_missing"] == MISSING[corpus]


def test_cremad_known_bad_and_unlisted_clips(scans):
    odd = {Path(p.source).name: p.reason for p in scans["cremad"].problems if "missing" not in p.reason}
    assert odd == {"1076_MTI_SAD_XX.wav": "cremad_known_bad_clip", "1001_DFA_ANG_HI.wav": "cremad_not_in_split"}
    assert not any("1076-MTI-SAD" in p.detail for p in scans["cremad"].problems if "missing" in p.reason)


def test_cremad_clips(scans):
    clips = {c.key: c for c in scans["cremad"].items}
    first = clips["cremad-1001-IEO-HAP-LO"]
    assert (first.speaker, first.sex, first.intensity, first.source_emotion) == ("cremad-1001", "male", "low", "HAP")
    assert first.transcript == "It's eleven o'clock"
    texts = load_sentences()["cremad"]
    assert all(c.transcript == texts[c.key.split("-")[2]] for c in clips.values())
    assert {c.sex for c in clips.values()} == {"male", "female"}
    info = sf.info(first.path)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def test_ravdess_clips(scans):
    clips = scans["ravdess"].items
    for c in clips:
        actor = int(c.key.split("-")[-1])
        assert c.sex == ("male" if actor % 2 else "female")
        assert c.transcript == load_sentences()["ravdess"][c.sentence]
        assert c.intensity in ("normal", "strong")
    test_actors = {c.speaker for c in clips if c.split == "test"}
    assert test_actors <= {"ravdess-01", "ravdess-11", "ravdess-20", "ravdess-21"} and len(test_actors) >= 2
    assert not test_actors & {c.speaker for c in clips if c.split == "train"}
    assert {c.sex for c in clips} == {"male", "female"}
    assert sf.info(clips[0].path).samplerate == 48000 and sf.info(clips[0].path).channels == 1


def test_mead_clips_are_stereo_m4a_and_load_as_mono(scans):
    clips = scans["mead"].items
    assert all(c.transcript is None and c.sentence is None and c.intensity.startswith("level_") for c in clips)
    assert all(c.sex == ("male" if c.speaker.startswith("mead-M") else "female") for c in clips)
    # the 44.1 kHz clip and one clip per emotion: each m4a costs an ffmpeg decode
    sample = [c for c in clips if c.key == "mead-W015-angry-level-2-014"]
    sample += [next(c for c in clips if c.emotion == e and c not in sample) for e in EMOTIONS]
    rates = {}
    for c in sample:
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=channels,codec_name", "-of", "json", c.path],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(probe.stdout)["streams"][0] == {"codec_name": "aac", "channels": 2}
        audio, rates[c.key] = load_audio(c.path)
        assert audio.ndim == 1 and audio.dtype == np.float32 and audio.size > rates[c.key]
    assert rates.pop("mead-W015-angry-level-2-014") == 44100
    assert set(rates.values()) == {48000} and len(rates) == 5


def test_mead_downmix_is_channel_mean(scans):
    path = scans["mead"].items[0].path
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-"], capture_output=True, check=True)
    stereo = np.frombuffer(raw.stdout, dtype="<f4").reshape(-1, 2)
    assert not np.allclose(stereo[:, 0], stereo[:, 1])  # really two different channels
    mono, _ = load_audio(path)
    np.testing.assert_allclose(mono, stereo.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("corpus", ["cremad", "ravdess", "mead"])
def test_not_a_tree_raises_user_error(tmp_path, corpus):
    scan, folder = SCANNERS[corpus]
    (tmp_path / "stray.wav").touch()
    with pytest.raises(UserError, match=f"not a {folder}"):
        scan(tmp_path)


def test_readers_report_bad_names_without_decoding(tmp_path):
    # empty files are enough: readers only list names
    for rel in ("C/AudioWAV/1001_DFA_ANG_XX.wav", "C/AudioWAV/notes.txt", "R/Actor_02/03-02-05-01-01-01-02.wav",
                "R/Actor_02/03-01-05-01-01-01-03.wav", "M/M003/audio.tar", "M/W009/audio/angry/level_1/x.m4a"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    cremad, ravdess, mead = scan_cremad(tmp_path / "C"), scan_ravdess(tmp_path / "R"), scan_mead(tmp_path / "M")
    assert [c.key for c in cremad.items] == ["cremad-1001-DFA-ANG-XX"]
    assert [Path(p.source).name for p in cremad.problems if p.reason == "cremad_bad_name"] == ["notes.txt"]
    assert ravdess.filtered == {"ravdess_not_audio_speech": 1}  # a song file (vocal channel 02)
    assert [p.reason for p in ravdess.problems if "missing" not in p.reason] == ["ravdess_bad_name"]
    assert Counter(p.reason for p in mead.problems if "missing" not in p.reason) == {
        "mead_audio_not_extracted": 1,
        "mead_bad_name": 1,
    }


def test_unreadable_audio_raises_audio_read_error(scans, tmp_path):
    wav = Path(scans["cremad"].items[0].path)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])
    with pytest.raises(AudioReadError, match="truncated"):
        load_audio(cut)
    m4a = Path(scans["mead"].items[0].path)
    cut_m4a = tmp_path / "cut.m4a"
    cut_m4a.write_bytes(m4a.read_bytes()[:4000])
    with pytest.raises(AudioReadError, match="unreadable"):
        load_audio(cut_m4a)
    empty_clip = next(p.source for p in scans["cremad"].problems if p.reason == "cremad_known_bad_clip")
    with pytest.raises(AudioReadError, match="no audio samples"):
        load_audio(empty_clip)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioReadError, match="empty file"):
        load_audio(tmp_path / "zero.wav")
