"""`voxemoset publish DIR --repo-id ORG/NAME` and `voxemoset stage publish -c CONFIG`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from voxemoset.errors import UserError


def publish_configured(cfg, say: Callable[[str], None], log: Callable[[str], None]) -> None:
    """`stage publish`: the built `<out>/dataset` to the config's `publish` section."""
    if not cfg.publish.repo_id:
        raise UserError(
            "stage publish needs publish.repo_id (ORG/NAME on the Hugging Face Hub) in the config, "
            "or run `voxemoset publish DIR --repo-id ORG/NAME`"
        )
    upload(Path(cfg.out), cfg.publish.repo_id, cfg.publish.private, False, say, log)


def upload(
    directory: Path, repo_id: str, private: bool, dry_run: bool, say: Callable[[str], None], log: Callable[[str], None]
) -> None:
    """Upload (or with dry_run, list) the dataset shards and card; `say` prints results, `log` progress."""
    from voxemoset.hub.upload import check_repo_id, describe, plan_upload
    from voxemoset.hub.upload import publish as publish_dataset

    check_repo_id(repo_id)
    if dry_run:
        for line in describe(plan_upload(directory), repo_id):
            say(line)
        return
    record = publish_dataset(directory, repo_id, private=private, log=log)
    say(f"published datasets/{repo_id}: {len(record['uploaded'])} uploaded, "
        f"{len(record['unchanged'])} unchanged, {len(record['deleted'])} removed")  # fmt: skip
