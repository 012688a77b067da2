"""Bad input bytes and paths: header-cut images, rows escaping their corpus, odd annotation JSON."""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf
from PIL import Image

from tests.builders import make_config, stage_rows
from voxemoset.config import parse_config
from voxemoset.errors import UserError
from voxemoset.fixtures.emoset import build_emoset_tree
from voxemoset.stages.images import SCHEMA, ImageReject, ImagesStage, process_entry
from voxemoset.store.runner import plan_stage, run_stage, stage_dir

# Paths opened while `_OPENS` is armed: Python's audit hook sees every open() from Python (pathlib, Pillow,
# the wav header check that precedes libsndfile), so "never opened" is checked on the real code, not a mock.
_OPENS: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENS is not None and event == "open" and isinstance(args[0], (str, Path)):
        _OPENS.append(str(args[0]))


sys.addaudithook(_audit)


class _Opened:
    """Context manager collecting the paths opened inside it."""

    def __enter__(self) -> list[str]:
        global _OPENS
        _OPENS = []
        return _OPENS

    def __exit__(self, *exc) -> None:
        global _OPENS
        _OPENS = None


def _real(path: str) -> Path:
    return Path(path).resolve()


def _jpeg(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (20, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _small_tree(root: Path) -> Path:
    build_emoset_tree(root, counts={"train": 1, "val": 0, "test": 1})
    return root


def _add_rows(root: Path, rows: list[list[str]]) -> None:
    split = root / "train.json"
    split.write_text(json.dumps(json.loads(split.read_text()) + rows))


def _images_config(out: Path, emoset: Path):
    return make_config(out, emoset, images={"shard_size": 100})


@pytest.mark.parametrize("cut", [20, 100, 200])
def test_jpeg_cut_inside_its_header_is_a_reject_and_the_stage_finishes(tmp_path, cut):
    root = _small_tree(tmp_path / "EmoSet")
    data = _jpeg()
    assert cut < data.index(b"\xff\xda")  # before the start-of-scan marker: inside the header
    (root / "image/anger/anger_91001.jpg").write_bytes(data[:cut])
    _add_rows(root, [["anger", "image/anger/anger_91001.jpg", "annotation/anger/anger_91001.json"]])
    out = tmp_path / "out"
    summary = run_stage(ImagesStage(), _images_config(out, root), out)
    rejects = {Path(r["source"]).stem: r["reason"] for r in stage_rows(stage_dir(out, "images") / "rejects")}
    assert rejects["anger_91001"] in ("images_truncated", "images_unreadable")
    rows = stage_rows(stage_dir(out, "images"))
    assert summary["rows"] == len(rows) > 0 and "anger_91001" not in {r["image_id"] for r in rows}


def test_rows_escaping_the_emoset_root_are_rejected_unread(tmp_path):
    root = _small_tree(tmp_path / "data" / "EmoSet")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = _jpeg((80, 60), (250, 10, 10))
    (outside / "anger_92001.jpg").write_bytes(secret)
    (outside / "anger_92002.jpg").write_bytes(secret)
    (outside / "anger_92003.jpg").write_bytes(secret)
    (outside / "note.json").write_text(json.dumps({"scene": "outside", "object": ["Secret"]}))
    (root / "image/anger/anger_92003.jpg").symlink_to(outside / "anger_92003.jpg")
    (root / "image/anger/anger_92004.jpg").write_bytes(_jpeg())
    _add_rows(
        root,
        [
            ["anger", str(outside / "anger_92001.jpg"), str(outside / "note.json")],  # absolute
            ["anger", "image/../../../outside/anger_92002.jpg", "annotation/anger/x.json"],  # `..` climbing
            ["anger", "image/anger/anger_92003.jpg", "annotation/anger/anger_92003.json"],  # symlink out
            ["anger", "image/anger/anger_92004.jpg", "../../outside/note.json"],  # annotation escapes
            ["anger", "image/anger/anger_92005.jpg", "../../../../../../../../etc/passwd"],
            ["anger", "../../../../../../../../etc/passwd", "annotation/anger/y.json"],
        ],
    )
    out = tmp_path / "out"
    with _Opened() as opened:
        run_stage(ImagesStage(), _images_config(out, root), out)
    rows = stage_rows(stage_dir(out, "images"))
    rejects = [r for r in stage_rows(stage_dir(out, "images") / "rejects") if r["reason"] == "images_path_outside_root"]
    assert len(rejects) == 6
    assert {r["image_id"] for r in rows}.isdisjoint({f"anger_9200{i}" for i in range(1, 6)} | {"passwd"})
    assert all(r["scene"] != "outside" for r in rows)
    assert not [p for p in map(_real, opened) if p.is_relative_to(outside) or p.is_relative_to("/etc")]


def test_process_entry_checks_the_root_again(tmp_path):
    """A symlink swapped in after planning is caught where the file would be read."""
    root, outside = tmp_path / "EmoSet", tmp_path / "outside.jpg"
    (root / "image").mkdir(parents=True)
    outside.write_bytes(_jpeg())
    (root / "image" / "a.jpg").symlink_to(outside)
    entry = {"image_id": "a", "split": "train", "emoset_split": "train", "emotion": "anger", "emoset_emotion": "anger"}
    entry |= {"image_path": str(root / "image" / "a.jpg"), "annotation_path": str(root / "a.json")}
    cfg = _images_config(tmp_path, root).images
    with _Opened() as opened, pytest.raises(ImageReject) as e:
        process_entry(entry, cfg, root)
    assert e.value.reason == "images_path_outside_root" and outside not in map(_real, opened)


def test_emoset_path_that_is_a_file_says_so(tmp_path):
    not_a_folder = tmp_path / "EmoSet.zip"
    not_a_folder.write_bytes(b"PK\x03\x04")
    with pytest.raises(UserError, match="is a file, not a folder"):
        plan_stage(ImagesStage(), _images_config(tmp_path / "out", not_a_folder))
    with pytest.raises(UserError, match="folder not found"):
        plan_stage(ImagesStage(), _images_config(tmp_path / "out", tmp_path / "absent"))


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"brightness": ' + b"9" * 400 + b"}", "ok"),  # an int no float holds: that value is None
        (b'{"brightness": ' + b"9" * 5000 + b"}", "invalid"),  # past Python's int-parsing digit limit
        (b"[" * 100_000, "invalid"),  # nesting deeper than the parser's recursion
        (b'{"scene": "\\ud800", "object": ["\\udfff", "Dog"]}', "ok"),  # lone surrogates: Parquet cannot store
        (b"\xff\xfe{\x00}\x00", "invalid"),  # not UTF-8
        (b'{"scene": "x"}' + b" " * (2 << 20), "invalid"),  # far larger than any annotation: not read whole
    ],
)
def test_annotation_json_never_breaks_the_row(tmp_path, raw, status):
    from voxemoset.corpora.emoset import read_annotation

    (tmp_path / "a.json").write_bytes(raw)
    got, attrs = read_annotation(tmp_path / "a.json")
    assert got == status
    pa.Table.from_pylist([attrs], schema=pa.schema([SCHEMA.field(k) for k in attrs]))  # storable


# --- speech corpora: files found by walking the root may be symlinks pointing outside it ---


def _wav(path: Path, seconds: float = 1.5, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def test_speech_readers_reject_clips_that_resolve_outside_their_root(tmp_path):
    from voxemoset.corpora.cremad import scan_cremad
    from voxemoset.corpora.mead import scan_mead
    from voxemoset.corpora.ravdess import scan_ravdess

    outside = _wav(tmp_path / "outside" / "clip.wav")
    (tmp_path / "outside" / "actor").mkdir()
    (tmp_path / "outside" / "actor" / "03-01-05-01-01-01-01.wav").symlink_to(outside)
    cremad = tmp_path / "CREMA-D" / "AudioWAV"
    _wav(cremad / "1001_DFA_ANG_XX.wav")
    (cremad / "1001_IEO_ANG_HI.wav").symlink_to(outside)
    ravdess = tmp_path / "RAVDESS"
    _wav(ravdess / "Actor_02" / "03-01-05-01-01-01-02.wav")
    (ravdess / "Actor_01").symlink_to(tmp_path / "outside" / "actor")  # a whole folder linked in
    level = tmp_path / "MEAD" / "M003" / "audio" / "angry" / "level_1"
    level.mkdir(parents=True)
    (level / "001.m4a").write_bytes(b"inside")
    (level / "002.m4a").symlink_to(outside)
    for scan, root, reason in (
        (scan_cremad, tmp_path / "CREMA-D", "cremad_path_outside_root"),
        (scan_ravdess, ravdess, "ravdess_path_outside_root"),
        (scan_mead, tmp_path / "MEAD", "mead_path_outside_root"),
    ):
        result = scan(root)
        escaped = [p for p in result.problems if p.reason == reason]
        assert len(escaped) == 1, reason
        assert all(Path(c.path).resolve() != outside.resolve() for c in result.items)


def test_references_stage_never_reads_a_clip_outside_its_root(tmp_path):
    from voxemoset.stages.references import ReferencesStage

    outside = _wav(tmp_path / "outside.wav")
    audio = tmp_path / "CREMA-D" / "AudioWAV"
    _wav(audio / "1001_DFA_ANG_XX.wav")
    (audio / "1001_IEO_ANG_HI.wav").symlink_to(outside)
    out = tmp_path / "out"
    cfg = parse_config(
        {"out": str(out), "sources": {"cremad": str(tmp_path / "CREMA-D")}, "references": {"corpora": ["cremad"]}}
    )
    with _Opened() as opened:
        run_stage(ReferencesStage(), cfg, out)
    rows = stage_rows(stage_dir(out, "references"))
    rejects = stage_rows(stage_dir(out, "references") / "rejects")
    assert [r["reference_id"] for r in rows] == ["cremad-1001-DFA-ANG-XX"]
    assert [r["source"] for r in rejects if r["reason"] == "cremad_path_outside_root"] == [
        str(audio / "1001_IEO_ANG_HI.wav")
    ]
    assert outside not in map(_real, opened)


def test_a_file_name_that_is_not_utf8_is_a_reject_not_a_crash(tmp_path):
    import os

    from voxemoset.stages.references import ReferencesStage

    audio = tmp_path / "CREMA-D" / "AudioWAV"
    _wav(audio / "1001_DFA_ANG_XX.wav")
    with open(os.fsencode(audio) + b"/1001_DFA_ANG_XX \xff.wav", "wb"):  # a Latin-1 byte, as old zips hold
        pass
    out = tmp_path / "out"
    cfg = parse_config(
        {"out": str(out), "sources": {"cremad": str(tmp_path / "CREMA-D")}, "references": {"corpora": ["cremad"]}}
    )
    run_stage(ReferencesStage(), cfg, out)  # was: UnicodeEncodeError writing the rejects table
    rejects = stage_rows(stage_dir(out, "references") / "rejects")
    assert [r["source"] for r in rejects if r["reason"] == "cremad_bad_name"] == [str(audio / "1001_DFA_ANG_XX ?.wav")]


def test_prepare_clip_checks_the_root_again(tmp_path):
    from voxemoset.config import PrepConfig
    from voxemoset.stages.references import prepare_clip

    outside = _wav(tmp_path / "outside.wav")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.wav").symlink_to(outside)
    entry = {"path": str(tmp_path / "root" / "a.wav"), "corpus": "cremad", "key": "k"}
    with _Opened() as opened:
        result = prepare_clip(entry, PrepConfig(), tmp_path / "root")
    assert result["reason"] == "cremad_path_outside_root" and not opened


def test_emobox_manifest_paths_cannot_leave_the_corpus():
    from voxemoset.corpora import emobox_relpath as _relpath

    assert _relpath("cremad", "downloads/cremad/AudioWAV/1001_DFA_ANG_XX.wav") == "AudioWAV/1001_DFA_ANG_XX.wav"
    for wav in ("downloads/cremad/../../etc/passwd", "downloads/cremad//etc/passwd"):
        with pytest.raises(ValueError, match="leaves the corpus"):
            _relpath("cremad", wav)


# --- audio headers that lie ---


def test_flac_header_claiming_2_to_the_36_frames_is_unreadable_not_a_256_gib_allocation(tmp_path):
    from voxemoset.audio import AudioReadError, load_audio

    buf = io.BytesIO()
    sf.write(buf, np.zeros(4800, np.float32), 16000, format="FLAC", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    # STREAMINFO follows "fLaC" and its 4-byte block header; total samples are its last 36 bits before the MD5.
    data[8 + 13] |= 0x0F
    data[8 + 14 : 8 + 18] = b"\xff\xff\xff\xff"
    (tmp_path / "lying.flac").write_bytes(bytes(data))
    with pytest.raises(AudioReadError, match="unreadable"):  # was: MemoryError allocating 256 GiB
        load_audio(tmp_path / "lying.flac")


def test_wav_claiming_a_1_hz_rate_is_a_reject(tmp_path):
    from voxemoset.config import PrepConfig
    from voxemoset.stages.references import prepare_clip

    path = _wav(tmp_path / "root" / "a.wav")
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", 1)  # fmt chunk's sample rate
    path.write_bytes(bytes(data))
    result = prepare_clip({"path": str(path), "corpus": "cremad", "key": "k"}, PrepConfig(), tmp_path / "root")
    assert result["reason"] == "references_bad_sample_rate"
