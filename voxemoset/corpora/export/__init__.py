"""`voxemoset corpus NAME`: a human-read corpus (SpokenCOCO, Flickr8kAudio) written in the published layout.

`<out>/corpora/NAME/data/<split>-NNNNN-of-NNNNN.parquet` with rejects and a dataset card.
"""
