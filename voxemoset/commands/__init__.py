"""Bodies of CLI commands that outgrew a few lines; `voxemoset.cli` only parses options and calls them."""
