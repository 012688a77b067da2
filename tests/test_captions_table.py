"""The `table` captions backend reads its file line by line: a bad line costs its image, never the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import make_config, stage_rows
from voxemoset.config import parse_config
from voxemoset.models.captioners.answer_table import MAX_LINE_BYTES, read_table
from voxemoset.stages.captions import CAPTIONS_TABLE_BAD_ROW, CaptionsStage
from voxemoset.stages.images import ImagesStage
from voxemoset.store.runner import run_stage, stage_dir


@pytest.fixture(scope="module")
def images_out(emoset_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("table-images")
    run_stage(ImagesStage(), make_config(out, emoset_root), out)
    return out


def _damaged_table(emoset_root: Path, kept: list[str], path: Path) -> dict[str, str]:
    """The fixture table with three kept images' lines broken three ways, plus a line naming no image."""
    lines = (emoset_root / "fixture_captions.jsonl").read_bytes().split(b"\n")
    by_id = {json.loads(line)["image_id"]: k for k, line in enumerate(lines) if line.strip()}
    invalid, non_utf8, huge = kept[:3]
    lines[by_id[invalid]] = lines[by_id[invalid]][:-5]  # cut: invalid JSON
    lines[by_id[non_utf8]] = lines[by_id[non_utf8]].replace(b"A ", b"A \xff\xfe ", 1)
    lines[by_id[huge]] = json.dumps({"image_id": huge, "answer": "x" * (1 << 20)}).encode()
    lines.append(b"\x00\x01 not json and no id \xff")
    path.write_bytes(b"\n".join(lines))
    return {invalid: "invalid JSON", non_utf8: "not UTF-8", huge: f"longer than {MAX_LINE_BYTES}"}


def test_bad_table_lines_are_rejects_of_their_images(emoset_root, images_out, tmp_path, caplog):
    """Invalid JSON, a non-UTF-8 byte and a 1 MB line reject their own images; the stage runs on."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(images_out / "stages", out / "stages")
    kept = sorted({r["image_id"] for r in stage_rows(stage_dir(out, "images"))} - {"awe_00001"})
    kept = [i for i in kept if i.split("_")[0] in ("amusement", "anger", "fear")]
    broken = _damaged_table(emoset_root, kept, tmp_path / "answers.jsonl")
    cfg = parse_config(
        {
            "out": str(out),
            "sources": {"emoset": str(emoset_root)},
            "captions": {"backend": "table", "table": str(tmp_path / "answers.jsonl")},
        }
    )
    with caplog.at_level("WARNING", logger="voxemoset"):
        summary = run_stage(CaptionsStage(), cfg, out)
    rejects = {r["source"]: r for r in stage_rows(stage_dir(out, "captions") / "rejects")}
    for image_id, what in broken.items():
        assert rejects[image_id]["reason"] == CAPTIONS_TABLE_BAD_ROW
        assert what in rejects[image_id]["detail"] and "answers.jsonl:" in rejects[image_id]["detail"]
    captioned = {r["image_id"] for r in stage_rows(stage_dir(out, "captions"))}
    assert not captioned & set(broken)
    # Everything else is captioned exactly as from the undamaged table (36 drawn images, 3 broken).
    assert summary["rows"] == (36 - 3) * 3
    assert summary["rejects"] == {"captions_empty": 3, CAPTIONS_TABLE_BAD_ROW: 3}
    assert "1 line(s) name no image" in caplog.text


def test_last_line_about_an_image_decides(tmp_path):
    """A later line for the same image replaces an earlier one, whether it is good or bad."""
    good = json.dumps({"image_id": "a", "answer": "ok"})
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join([good.encode(), b'{"image_id": "a", "answer": ', b"", good.encode(), b"\r\n"]))
    rows = read_table(path)
    assert rows.answers == {"a": "ok"} and not rows.bad
    path.write_bytes(b"\n".join([good.encode(), b'{"image_id": "a", "answer": 3}']))
    rows = read_table(path)
    assert not rows.answers and "no `answer`" in rows.bad["a"]
