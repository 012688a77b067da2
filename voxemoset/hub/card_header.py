"""The YAML header of a dataset card, as `datasets` and the Hub read it: data files per split, typed features,
split sizes. The VoxEmoset card and the corpus cards both start with one."""

from __future__ import annotations

from voxemoset.hub.shards import SplitStats


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket of a row count."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"


def hub_header(described: dict, features, splits: dict[str, SplitStats]) -> dict:
    """`described` (pretty_name, license, language, task_categories, tags, in the order given), then the size
    category, `configs` (one `data/<split>-*` pattern per split) and `dataset_info` (features, splits, sizes)."""
    return {
        **described,
        "size_categories": [size_category(sum(s.rows for s in splits.values()))],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"data/{name}-*"} for name in splits],
            }
        ],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": n, "num_bytes": s.num_bytes, "num_examples": s.rows} for n, s in splits.items()],
            "download_size": sum(s.file_bytes for s in splits.values()),
            "dataset_size": sum(s.num_bytes for s in splits.values()),
        },
    }
