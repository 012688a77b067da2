"""What a preflight finds: one item per thing it checked, ready or a problem, and the report holding them all."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxemoset.errors import UserError


@dataclass(frozen=True)
class Item:
    """One checked thing: its kind (source | model | tool | disk | gpu), its name, and what was found."""

    kind: str
    name: str
    detail: str
    ok: bool = True
    blocking: bool = True  # False: reported, but never stops a build (e.g. the report's CLIP)

    def line(self) -> str:
        """`<name>: <detail>`, one line."""
        return f"{self.name}: {self.detail}"


def ready(kind: str, name: str, detail: str) -> Item:
    """Something found as it should be."""
    return Item(kind, name, detail)


def problem(kind: str, name: str, detail: str, blocking: bool = True) -> Item:
    """Something missing or wrong, with what to do about it in `detail`."""
    return Item(kind, name, " ".join(detail.split()), ok=False, blocking=blocking)


@dataclass
class Report:
    """Every item a preflight checked, in the order checked."""

    items: list[Item] = field(default_factory=list)

    @property
    def ready(self) -> list[Item]:
        return [i for i in self.items if i.ok]

    @property
    def problems(self) -> list[Item]:
        """Everything that would stop the build."""
        return [i for i in self.items if not i.ok and i.blocking]

    @property
    def warnings(self) -> list[Item]:
        """Problems that do not stop the build."""
        return [i for i in self.items if not i.ok and not i.blocking]


class PreflightError(UserError):
    """The preflight found problems; the message lists every one, one per line, and `report` holds them."""

    def __init__(self, report: Report):
        n = len(report.problems)
        lines = [f"preflight found {n} problem{'s' * (n != 1)}:", *(f"  {i.line()}" for i in report.problems)]
        super().__init__("\n".join(lines))
        self.report = report


def require_ready(report: Report) -> Report:
    """The report unchanged when nothing blocks the build; else one PreflightError listing every problem."""
    if report.problems:
        raise PreflightError(report)
    return report
