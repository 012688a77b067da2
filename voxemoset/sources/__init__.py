"""Readers for the source corpora in their native layouts."""
