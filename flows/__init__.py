"""Prefect flows: thin wrappers that order voxemoset stages and fan out over shards."""
