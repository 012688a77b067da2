"""`voxemoset publish`: upload `<out>/dataset` (card + shards) to a Hugging Face dataset repo.

Each changed shard is pre-uploaded on its own (LFS or Xet storage keeps what finished), then one commit
adds them all with the card and removes shards the new build no longer has. A rerun after a dropped
connection or a kill sends only what the Hub does not hold yet; files whose content the repo already
has are skipped, so publishing an unchanged build sends nothing. The token comes only from
huggingface_hub's own lookup (HF_TOKEN, or `hf auth login`); this module never reads or prints it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import voxemoset
from voxemoset.errors import UserError
from voxemoset.hub.shards import list_dataset_shards
from voxemoset.store.atomic import write_json

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class UploadItem:
    """One local file and where it goes in the repo."""

    local: Path
    path_in_repo: str
    size: int


def plan_upload(out: Path) -> list[UploadItem]:
    """Exactly the card and the shards of `<out>/dataset`, card first."""
    folder = Path(out) / "dataset"
    card = folder / "README.md"
    shards = [p for paths in list_dataset_shards(folder / "data").values() for p in paths]
    if not card.is_file() or not shards:
        raise UserError(f"no dataset to publish under {folder}: run `voxemoset stage dataset` first")
    items = [UploadItem(card, "README.md", card.stat().st_size)]
    return items + [UploadItem(p, f"data/{p.name}", p.stat().st_size) for p in sorted(shards)]


def check_repo_id(repo_id: str) -> str:
    """ORG/NAME, or one clear error."""
    if not REPO_ID.match(repo_id):
        raise UserError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")
    return repo_id


def describe(items: list[UploadItem], repo_id: str) -> list[str]:
    """What would go where: `local -> datasets/ORG/NAME/path (N bytes)`, one line per file."""
    return [f"{i.local} -> datasets/{repo_id}/{i.path_in_repo} ({i.size} bytes)" for i in items]


def _sha256(path: Path) -> bytes:
    from huggingface_hub.utils.sha import sha_fileobj

    with open(path, "rb") as f:
        return sha_fileobj(f)


def _unchanged(item: UploadItem, remote, digest: bytes | None) -> bool:
    """Whether the repo already holds this file's exact content (LFS by sha256, regular files by git oid)."""
    if remote is None or remote.size != item.size:
        return False
    if remote.lfs is not None:
        return digest is not None and remote.lfs.sha256 == digest.hex()
    from huggingface_hub.utils.sha import git_hash

    return remote.blob_id == git_hash(item.local.read_bytes())


def publish(out: Path, repo_id: str, private: bool = False, log: Callable[[str], None] = print) -> dict:
    """Create the dataset repo if needed and upload what changed; returns (and records) what was done."""
    import httpx
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    items = plan_upload(out)
    if constants.HF_HUB_OFFLINE:
        raise UserError("HF_HUB_OFFLINE is set: publishing needs the Hub; unset it and run again")
    if get_token() is None:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`, then run again")
    api = HfApi()
    try:
        record = _publish(api, items, repo_id, private, log)
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise UserError(f"the Hub answered {status}: {str(e).splitlines()[0]} (rerun to resume)") from None
    except (httpx.HTTPError, OSError, RuntimeError) as e:
        raise UserError(f"upload to {api.endpoint} failed: {type(e).__name__}: {e} (rerun to resume)") from None
    write_json(Path(out) / "publish.json", record)
    return record


def _publish(api, items: list[UploadItem], repo_id: str, private: bool, log: Callable[[str], None]) -> dict:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.hf_api import RepoFile

    kind = "dataset"
    url = api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True)
    remote = {f.path: f for f in api.list_repo_tree(repo_id, repo_type=kind, recursive=True) if isinstance(f, RepoFile)}
    digests = {i.path_in_repo: _sha256(i.local) for i in items if i.path_in_repo.startswith("data/")}
    changed = [i for i in items if not _unchanged(i, remote.get(i.path_in_repo), digests.get(i.path_in_repo))]
    local = {i.path_in_repo for i in items}
    # Shards of an earlier build that this one no longer has (e.g. a split now in fewer, larger files).
    stale = sorted(p for p in remote if p.startswith("data/") and p.endswith(".parquet") and p not in local)
    record = {"repo_id": repo_id, "url": str(url), "uploaded": [i.path_in_repo for i in changed], "deleted": stale,
              "unchanged": [i.path_in_repo for i in items if i not in changed], "commit": None}  # fmt: skip
    if not changed and not stale:
        log(f"nothing to upload: datasets/{repo_id} already holds these {len(items)} files")
        return record
    ops = []
    shards = [i for i in changed if i.path_in_repo in digests]
    for item in changed:
        op = CommitOperationAdd(path_in_repo=item.path_in_repo, path_or_fileobj=str(item.local))
        if item in shards:
            op.upload_info.sha256 = digests[item.path_in_repo]  # already hashed above: skip a second read
            log(f"[{shards.index(item) + 1}/{len(shards)}] {item.path_in_repo} ({item.size / 1e6:.1f} MB)")
            # One file per call: the Hub keeps each finished file, so a rerun resumes after the last one.
            api.preupload_lfs_files(repo_id, additions=[op], repo_type=kind)
        ops.append(op)
    ops += [CommitOperationDelete(path_in_repo=p) for p in stale]
    message = f"voxemoset {voxemoset.__version__}: {len(changed)} files updated, {len(stale)} removed"
    info = api.create_commit(repo_id, operations=ops, commit_message=message, repo_type=kind)
    record["commit"] = info.oid
    log(f"committed {len(changed)} files, removed {len(stale)}: {info.commit_url}")
    return record
