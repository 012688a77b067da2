"""`images` stage: validate and decode each EmoSet image once; store RGB bytes, metadata, attributes."""

from voxemoset.images import KEEP_FORMATS, ImageReject, decode_image
from voxemoset.stages.images.stage import SCHEMA, ImagesStage, process_entry

__all__ = ["KEEP_FORMATS", "SCHEMA", "ImageReject", "ImagesStage", "decode_image", "process_entry"]
