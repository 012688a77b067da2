"""The `table` captioner: answers written elsewhere (people, another model run, the demo's fixture builder).

Each answer still goes through the same validation as a model's, so a table cannot smuggle in
emotional or malformed captions. The table is read line by line as bytes: one bad line costs its
own image (or, when no image id can be read from it, is counted), never the stage.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from voxemoset.errors import UserError
from voxemoset.store.keys import hash_file

# A JSONL answer for three short captions is a few hundred bytes; anything this long is not an answer.
MAX_LINE_BYTES = 64 * 1024
# Where a line is not valid JSON, its image id can still often be read, so the loss is that image alone.
_IMAGE_ID = re.compile(rb'"image_id"\s*:\s*"([^"\\]{1,256})"')

log = logging.getLogger("voxemoset")


def table_identity(path: Path | None) -> dict:
    """What keys the stage for a table: its content."""
    if path is None or not Path(path).is_file():
        raise UserError(f"captions.table: file not found: {path}")
    return {"table": Path(path).name, "sha256": hash_file(Path(path))}


@dataclass
class TableRows:
    """A parsed table: answers by image id, problems by image id, and lines with no readable id."""

    answers: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    unattributed: list[str] = field(default_factory=list)


def _parse_line(line: bytes) -> tuple[str, str]:
    """(image_id, answer) of one JSONL row, or ValueError saying what is wrong with it."""
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"line of {len(line)} bytes is longer than {MAX_LINE_BYTES}")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 (byte 0x{line[e.start]:02x} at offset {e.start})") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(row, dict) or not isinstance(row.get("image_id"), str | int):
        raise ValueError("not a {image_id, answer} JSON object")
    if isinstance(row.get("answer"), str):
        return str(row["image_id"]), row["answer"]
    if "captions" in row:
        return str(row["image_id"]), json.dumps({"captions": row["captions"]})
    raise ValueError("no `answer` string (nor `captions` list)")


def read_table(path: Path) -> TableRows:
    """Every line of a JSONL answer table, each judged alone."""
    rows = TableRows()
    for n, line in enumerate(Path(path).read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            image_id, answer = _parse_line(line)
        except ValueError as e:
            detail = f"{Path(path).name}:{n}: {e}"
            found = _IMAGE_ID.search(line)
            if found:
                image_id = found.group(1).decode("utf-8", "replace")
                rows.answers.pop(image_id, None)  # the last line about an image decides, good or bad
                rows.bad[image_id] = detail
            else:
                rows.unattributed.append(detail)
            continue
        rows.answers[image_id] = answer
        rows.bad.pop(image_id, None)
    if rows.unattributed:
        log.warning(
            "captions.table: %d line(s) name no image and were skipped, first: %s",
            len(rows.unattributed),
            rows.unattributed[0],
        )
    return rows


class TableCaptioner:
    """Looks each image's raw answer up by image_id; an image missing from the table gets an empty answer."""

    name = "table"

    def __init__(self, answers: dict[str, str], bad: dict[str, str] | None = None, unattributed: int = 0):
        self.answers, self.bad, self.unattributed = answers, dict(bad or {}), unattributed

    @classmethod
    def load(cls, path: Path | None) -> TableCaptioner:
        """Read `{"image_id": ..., "answer": ...}` JSONL rows (`captions` as a list is accepted too)."""
        table_identity(path)
        rows = read_table(Path(path))
        return cls(rows.answers, rows.bad, len(rows.unattributed))

    def caption(self, images: list, seeds: list[int], ids: list[str] | None = None) -> list[str]:
        """The stored answer of each image (the same on every attempt)."""
        if ids is None:
            raise ValueError("the table backend needs image ids")
        return [self.answers.get(i, "") for i in ids]
