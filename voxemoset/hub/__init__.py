"""Everything the Hugging Face Hub sees: the published row format (`datasets` features), byte-budgeted Parquet
shards and their stable names, a card's Hub header, and the upload (`voxemoset publish`, `stage publish`).

Written by the dataset stage and the corpus command; read by the report and training.
"""
