"""Shard storage: atomic Parquet writes, content keys, and the one runner every stage uses."""
