"""What every captioner is asked for, and how a backend says it cannot answer at all."""

from __future__ import annotations

from voxemoset.errors import UserError

N_CAPTIONS = 3
# The JSON the model is asked for; vLLM and OpenAI-compatible servers constrain decoding to it.
CAPTIONS_SCHEMA = {
    "type": "object",
    "properties": {
        "captions": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": N_CAPTIONS,
            "maxItems": N_CAPTIONS,
        }
    },
    "required": ["captions"],
    "additionalProperties": False,
}


class CaptionBackendError(UserError):
    """A captioning backend failed in a way retrying this image will not fix (server down, bad request)."""
