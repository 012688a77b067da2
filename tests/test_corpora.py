"""Human-read corpora: SpokenCOCO (Karpathy split) and Flickr8kAudio read in their native layouts, written as
published-layout shards with rejects; resumable; read back by `datasets` and by the trainer."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from tests.conftest import write_config
from voxemoset.config import parse_config
from voxemoset.corpora import scan_corpus
from voxemoset.corpora.export.command import corpus
from voxemoset.corpora.export.writer import corpus_dir, run_corpus
from voxemoset.errors import UserError
from voxemoset.fixtures import flickr8k as flickr_fixture
from voxemoset.fixtures import spokencoco as coco_fixture
from voxemoset.hub.shards import SHARD_NAME


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("corpora")
    paths = coco_fixture.build_spokencoco_tree(root)
    return {"spokencoco": str(paths["spokencoco"]), "coco": str(paths["coco"]),
            "flickr8k": str(flickr_fixture.build_flickr8k_tree(root))}  # fmt: skip


@pytest.fixture(scope="module")
def built(trees, tmp_path_factory):
    """Both corpora written once, two utterances a shard (so splits span several shards)."""
    cfg = parse_config({"out": str(tmp_path_factory.mktemp("out")), "sources": trees, "corpora": {"shard_size": 2}})
    return cfg, {name: run_corpus(name, cfg) for name in ("spokencoco", "flickr8k")}


def _rows(folder: Path) -> list[dict]:
    return [r for p in sorted((folder / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def _rejects(folder: Path) -> list[dict]:
    files = sorted((folder / "rejects").rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in files]).to_pylist()


FIXTURES = {"spokencoco": coco_fixture, "flickr8k": flickr_fixture}


@pytest.mark.parametrize("name", ["spokencoco", "flickr8k"])
def test_counts_per_split_and_rejects_with_reasons(built, name):
    cfg, summaries = built
    folder = corpus_dir(cfg.out, name)
    rows, rejects = _rows(folder), _rejects(folder)
    assert Counter(r["split"] for r in rows) == FIXTURES[name].EXPECTED_ROWS
    assert Counter(r["reason"] for r in rejects) == FIXTURES[name].EXPECTED_REJECTS
    assert summaries[name]["rows"] == len(rows) and summaries[name]["rejects"] == FIXTURES[name].EXPECTED_REJECTS
    assert all(r["source"] and r["detail"] and r["stage"] == f"corpus_{name}" for r in rejects)
    assert len({r["id"] for r in rows}) == len(rows)
    # Nothing is lost: every utterance the reader saw is either a row or a reject.
    listed = scan_corpus(name, cfg.sources)
    assert len(listed.items) + len(listed.problems) == len(rows) + len(rejects)
    # Shards follow the published naming, and each holds only its own split.
    for path in (folder / "data").glob("*.parquet"):
        m = SHARD_NAME.match(path.name)
        assert m and {r["split"] for r in pq.read_table(path).to_pylist()} <= {m["split"]}


def test_karpathy_split_wins_and_restval_is_train(built):
    cfg, _ = built
    rows = _rows(corpus_dir(cfg.out, "spokencoco"))
    by_image = {r["image_id"]: (r["split"], r["source_split"]) for r in rows}
    # restval images are train, whichever SpokenCOCO file lists them (image 11 is in SpokenCOCO_val.json).
    assert by_image["COCO_train2014_000000000002"] == ("train", "restval")
    assert by_image["COCO_val2014_000000000011"] == ("train", "restval")
    assert by_image["COCO_val2014_000000000012"] == ("validation", "val")
    assert by_image["COCO_val2014_000000000016"] == ("test", "test")
    assert "COCO_train2014_000000000004" not in by_image  # in no Karpathy split
    speakers = {r["speaker"] for r in rows}
    assert speakers == {"spk0", "spk1", "spk2"} and all(r["emotion"] is None for r in rows)


def test_flickr_splits_speakers_and_captions(built):
    cfg, _ = built
    rows = _rows(corpus_dir(cfg.out, "flickr8k"))
    dev = [r for r in rows if r["split"] == "validation"]
    assert [(r["image_id"], r["source_split"], r["caption_index"]) for r in dev] == [("1003_c3", "dev", 0)]
    assert {r["speaker"] for r in rows} <= {"1", "2", "3"} and all(r["caption"].endswith(".") for r in rows)
    assert {r["id"] for r in rows if r["image_id"] == "1007_g7"} == {"flickr8k-1007_g7_0", "flickr8k-1007_g7_1"}


def test_audio_is_16khz_flac_and_images_are_rgb(built):
    from PIL import Image

    cfg, _ = built
    for name in ("spokencoco", "flickr8k"):
        for r in _rows(corpus_dir(cfg.out, name)):
            info = sf.info(io.BytesIO(r["audio"]["bytes"]))
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            assert r["duration_s"] == pytest.approx(info.frames / 16000) and r["duration_s"] > 0.5
            assert Image.open(io.BytesIO(r["image"]["bytes"])).mode == "RGB"
    # The 22.05 kHz recording was resampled: same length in seconds as the source.
    src = Path(cfg.sources.spokencoco) / "wavs/val/0/spk2-img11-0.wav"
    (row,) = [r for r in _rows(corpus_dir(cfg.out, "spokencoco")) if r["id"] == "spokencoco-spk2-img11-0"]
    assert sf.info(src).samplerate == 22050 and row["duration_s"] == pytest.approx(sf.info(src).duration, abs=1e-3)


def test_rerun_skips_finished_shards_and_a_changed_shard_size_replans(built):
    cfg, summaries = built
    folder = corpus_dir(cfg.out, "flickr8k")
    before = {p: p.read_bytes() for p in (folder / "data").glob("*.parquet")}
    again = run_corpus("flickr8k", cfg)
    assert again["computed"] == 0 and again["skipped"] == summaries["flickr8k"]["shards"]
    assert {p: p.read_bytes() for p in (folder / "data").glob("*.parquet")} == before
    # Another shard size makes other shard names: the old ones go, rows and rejects stay the same.
    wider = cfg.model_copy(update={"corpora": cfg.corpora.model_copy(update={"shard_size": 100})})
    summary = run_corpus("flickr8k", wider)
    assert sorted(p.name for p in (folder / "data").glob("*.parquet")) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]  # fmt: skip
    assert sorted(p.name for p in (folder / "_done" / "data").glob("*.json")) == [
        p.stem + ".json" for p in sorted((folder / "rejects" / "data").glob("*.parquet"))
    ]
    assert summary["rows"] == summaries["flickr8k"]["rows"] and summary["rejects"] == summaries["flickr8k"]["rejects"]
    run_corpus("flickr8k", cfg)  # back to the module's layout for the other tests


def test_a_damaged_shard_is_recomputed(built):
    cfg, _ = built
    folder = corpus_dir(cfg.out, "spokencoco")
    shard = sorted((folder / "data").glob("train-*.parquet"))[0]
    good = shard.read_bytes()
    shard.write_bytes(good[: len(good) // 2])
    summary = run_corpus("spokencoco", cfg)
    assert summary["computed"] == 1 and shard.read_bytes() == good


def test_datasets_and_the_trainer_read_the_shards(built, tmp_path):
    import datasets

    from voxemoset.train.data import SpeechImageDataset, load_rows

    cfg, _ = built
    folder = corpus_dir(cfg.out, "spokencoco")
    # A shard whose every utterance was rejected (image 15's) is empty, and still reads.
    assert any(pq.read_metadata(p).num_rows == 0 for p in (folder / "data").glob("test-*.parquet"))
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf"))
    assert {s: ds[s].num_rows for s in ds} == coco_fixture.EXPECTED_ROWS
    assert ds["train"].features["audio"].sampling_rate == 16000
    assert ds["test"][0]["audio"]["sampling_rate"] == 16000 and ds["test"][0]["image"].mode == "RGB"
    rows = load_rows(folder, "train", tmp_path / "cache")
    item = SpeechImageDataset(rows, resolution=32)[0]
    assert item["pixel_values"].shape == (3, 32, 32) and item["audio"].ndim == 1 and item["emotion"] is None


def test_the_command_writes_the_corpus_and_fails_in_one_line(trees, tmp_path):
    app = typer.Typer()
    app.command("corpus")(corpus)
    app.command("other")(lambda: None)  # two commands, so the name is a subcommand as in voxemoset's CLI
    config = write_config(tmp_path / "c.yaml", {"sources": {"flickr8k": trees["flickr8k"]}})
    result = CliRunner().invoke(app, ["corpus", "flickr8k", "-c", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "7 utterances, 10 rejects" in result.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["stages"]["corpus_flickr8k"]["rows"] == 7
    for args, message in (
        (["corpus", "coco", "-c", str(config)], "unknown corpus 'coco'"),
        (["corpus", "spokencoco", "-c", str(config)], "sources.spokencoco is not set"),
    ):
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, UserError) and message in str(result.exception)


def test_layout_problems_are_one_clear_error(tmp_path):
    (tmp_path / "SpokenCOCO").mkdir()
    (tmp_path / "coco").mkdir()
    sources = parse_config({"sources": {"spokencoco": str(tmp_path / "SpokenCOCO"), "coco": str(tmp_path / "coco"),
                                        "flickr8k": str(tmp_path / "coco")}}).sources  # fmt: skip
    with pytest.raises(UserError, match="SpokenCOCO_train.json.*dataset_coco.json"):
        scan_corpus("spokencoco", sources)
    with pytest.raises(UserError, match="flickr_audio/wavs/.*Flickr8k.token.txt"):
        scan_corpus("flickr8k", sources)
    (tmp_path / "coco" / "dataset_coco.json").write_bytes(b'{"images": [\xff]}')
    for name in ("SpokenCOCO_train.json", "SpokenCOCO_val.json", "wavs"):
        (tmp_path / "SpokenCOCO" / name).mkdir() if name == "wavs" else (tmp_path / "SpokenCOCO" / name).write_text(
            "{}"
        )
    with pytest.raises(UserError, match="dataset_coco.json is not readable JSON"):
        scan_corpus("spokencoco", sources)


@pytest.mark.parametrize("name", ["spokencoco", "flickr8k"])
def test_the_card_states_splits_rejects_features_and_terms(built, name, tmp_path):
    import datasets
    import yaml

    from voxemoset.corpora.export.rows import corpus_features

    cfg, summaries = built
    folder = corpus_dir(cfg.out, name)
    text = (folder / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---\n")[1])
    sizes = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert sizes == FIXTURES[name].EXPECTED_ROWS and header["license"] == "other"
    assert [f["split"] for f in header["configs"][0]["data_files"]] == list(sizes)
    for reason, count in summaries[name]["rejects"].items():  # every reason, with the run's count
        assert f"| `{reason}` | {count} |" in text
    assert "always null" in text and "## Terms" in text
    rows = _rows(folder)  # the paper's SpokenCOCO training source, recounted from the shards
    paper = [r for r in rows if r["split"] in ("train", "validation")]
    if name == "spokencoco":
        assert f"{len({r['image_id'] for r in paper})} images and {len(paper)} utterances here" in text
    else:
        assert "The paper trains on" not in text
    # `datasets` takes the card's header: the typed features of the shards, the card's splits.
    builder = datasets.load_dataset_builder(str(folder), cache_dir=str(tmp_path / "hf"))
    assert builder.info.features == corpus_features()
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == sizes
