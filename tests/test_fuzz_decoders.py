"""Cut and corrupted files never stop a stage: each per-item function returns a row or a reject (issue 12).

Valid seed files (48x48 images, 0.3 s audio) are truncated or overwritten at random offsets, 500 cases per
format, derandomized so CI sees the same cases every run. Each m4a case, and each WAV libsndfile refuses, costs
an ffmpeg run, which sets the runtime (about a minute in all on two cores, 40 s of it CPU).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from voxemoset.config import ImagesConfig, PrepConfig
from voxemoset.corpora.emoset import read_annotation
from voxemoset.stages import images, references

CASES = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Small enough that 48x48 seeds reach Pillow's full decode rather than stopping at the size check.
IMAGES = ImagesConfig(min_side=16)
# 0.3 s seeds: a low floor lets some damaged clips become rows, exercising trimming and FLAC encoding too.
PREP = PrepConfig(min_s=0.1)


# Values that make a size, count or rate field lie (0, 1, all ones, sign bit), in either byte order.
WORDS = [
    v.to_bytes(4, order) for v in (0, 1, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF) for order in ("little", "big")
]


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` cut at an offset, or with bytes or 4-byte words overwritten; offsets favour the header."""
    offset = st.one_of(st.integers(0, min(len(data), 256) - 1), st.integers(0, len(data) - 1))
    how = draw(st.sampled_from(["cut", "bytes", "words"]))
    if how == "cut":
        return data[: draw(offset)]
    out = bytearray(data)
    value = st.integers(0, 255).map(lambda b: bytes([b])) if how == "bytes" else st.sampled_from(WORDS)
    for pos, new in draw(st.lists(st.tuples(offset, value), min_size=1, max_size=8)):
        out[pos : pos + len(new)] = new
    return bytes(out[: len(data)]) if how == "words" else bytes(out)


def _image(fmt: str) -> bytes:
    img = Image.new("RGB", (48, 48), (30, 120, 200))
    img.paste((220, 40, 40), (8, 8, 30, 40))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


IMAGE_SEEDS = {fmt: _image(fmt) for fmt in ("JPEG", "PNG", "WEBP", "GIF")}


@pytest.fixture(scope="module")
def emoset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("EmoSet")
    (root / "a.json").write_text(json.dumps({"scene": "beach", "object": ["Dog"], "brightness": 0.5}))
    return root


@pytest.mark.parametrize("fmt", sorted(IMAGE_SEEDS))
def test_images_per_item_returns_a_row_or_a_reject(emoset, fmt):
    path = emoset / f"x.{fmt.lower()}"
    entry = {"image_id": "x", "split": "train", "emoset_split": "train", "emotion": "anger", "emoset_emotion": "anger"}
    entry |= {"image_path": str(path), "annotation_path": str(emoset / "a.json")}

    @CASES
    @given(data=damaged(IMAGE_SEEDS[fmt]))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            row = images.process_entry(entry, IMAGES, emoset)
        except images.ImageReject as e:
            assert e.reason.startswith("images_")
            return
        pa.Table.from_pylist([row], schema=images.SCHEMA)  # a row the shard writer can store
        with Image.open(io.BytesIO(row["image"]["bytes"])) as stored:
            assert stored.mode == "RGB" and stored.size == (row["width"], row["height"])

    check()


def _audio_seeds(folder: Path) -> dict[str, bytes]:
    rate = 16000
    t = np.arange(int(0.3 * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    seeds = {}
    for fmt in ("WAV", "FLAC"):
        buf = io.BytesIO()
        sf.write(buf, x, rate, format=fmt, subtype="PCM_16")
        seeds[fmt.lower()] = buf.getvalue()
    sf.write(folder / "seed.wav", x, rate, subtype="PCM_16")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(folder / "seed.wav"), "-c:a", "aac", "-b:a", "32k",
         str(folder / "seed.m4a")],
        check=True,
    )  # fmt: skip
    seeds["m4a"] = (folder / "seed.m4a").read_bytes()
    return seeds


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    root = tmp_path_factory.mktemp("CREMA-D")
    return root, _audio_seeds(root)


@pytest.mark.parametrize("fmt", ["wav", "flac", "m4a"])
def test_references_per_clip_returns_a_row_or_a_reject(audio, fmt):
    root, seeds = audio
    path = root / f"clip.{fmt}"
    entry = {"key": "cremad-1001-DFA-ANG-XX", "corpus": "cremad", "path": str(path), "speaker": "cremad-1001"}
    entry |= {"sex": "male", "emotion": "anger", "source_emotion": "ANG", "intensity": "unspecified"}
    entry |= {"split": "train", "sentence": "DFA", "transcript": "Don't forget a jacket."}

    @CASES
    @given(data=damaged(seeds[fmt]))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        result = references.prepare_clip(entry, PREP, root)
        if "reason" in result:
            assert result["reason"].startswith("references_") and result["source"] == str(path)
            return
        pa.Table.from_pylist([result["row"]], schema=references.SCHEMA)
        assert result["audio"].dtype == np.float32 and np.isfinite(result["audio"]).all()

    check()


@CASES
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        # lone surrogates, as raw UTF-8-like bytes and as JSON escapes (valid JSON, unstorable text)
        st.text(st.characters(categories=["Cs", "Ll"]), max_size=5).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.text(st.characters(categories=["Cs", "Ll"]), max_size=5).map(
            lambda s: json.dumps({"scene": s, "object": [s, "Dog"]}).encode()
        ),
        damaged(json.dumps({"brightness": 0.4, "scene": "alley", "object": ["Dog", "Cake"]}).encode()),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["scene", "object"]), inner),
        ).map(lambda v: json.dumps({"object": v, "scene": v, "brightness": v}).encode()),
    )
)
def test_annotation_reader_never_raises(tmp_path_factory, raw: bytes):
    path = tmp_path_factory.getbasetemp() / "annotation.json"
    path.write_bytes(raw)
    status, attrs = read_annotation(path)
    assert status in ("ok", "invalid")
    pa.Table.from_pylist([attrs], schema=pa.schema([images.SCHEMA.field(k) for k in attrs]))
