"""The published row format: `datasets` features and byte-budgeted Parquet shards.

Written by the dataset stage; read by the report, publish and training.
"""
