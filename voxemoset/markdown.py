"""Markdown tables, as the cards, the report and the evaluation table print them."""

from __future__ import annotations


def md_table(head: list[str], rows: list[list]) -> str:
    """A header row, the separator and one row per list; None prints as an empty cell."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join("" if x is None else str(x) for x in r) + " |" for r in rows])
