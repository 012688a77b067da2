"""`table` backend: answers written elsewhere (people, another model run, the demo's fixture builder).

Each answer still goes through the same validation as a model's, so a table cannot smuggle in
emotional or malformed captions.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxemoset.errors import UserError
from voxemoset.store.keys import hash_file


def table_identity(path: Path | None) -> dict:
    """What keys the stage for a table: its content."""
    if path is None or not Path(path).is_file():
        raise UserError(f"captions.table: file not found: {path}")
    return {"table": Path(path).name, "sha256": hash_file(Path(path))}


class TableCaptioner:
    """Looks each image's raw answer up by image_id; an image missing from the table gets an empty answer."""

    name = "table"

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    @classmethod
    def load(cls, path: Path | None) -> TableCaptioner:
        """Read `{"image_id": ..., "answer": ...}` JSONL rows (`captions` as a list is accepted too)."""
        table_identity(path)
        answers = {}
        for n, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                answer = row["answer"] if "answer" in row else json.dumps({"captions": row["captions"]})
                answers[str(row["image_id"])] = answer
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"captions.table: {path}:{n} is not a {{image_id, answer}} JSON row") from None
        return cls(answers)

    def caption(self, images: list, seeds: list[int], ids: list[str] | None = None) -> list[str]:
        """The stored answer of each image (the same on every attempt)."""
        if ids is None:
            raise ValueError("the table backend needs image ids")
        return [self.answers.get(i, "") for i in ids]
