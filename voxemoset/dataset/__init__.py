"""The published dataset: `datasets` features, byte-budgeted Parquet shards, the dataset card."""
