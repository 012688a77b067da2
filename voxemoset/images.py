"""Check and decode image bytes once: RGB JPEG/PNG kept byte for byte, anything else re-encoded as PNG."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

# Formats kept byte for byte when already RGB; anything else is re-encoded losslessly as PNG.
KEEP_FORMATS = {"JPEG", "PNG"}


class ImageReject(Exception):
    """An image that cannot be used; `reason` is the rejects constant."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white rather than whatever colour the alpha hid.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def _os_reject(e: OSError, otherwise: str) -> ImageReject:
    reason = "images_truncated" if "truncated" in str(e).lower() else otherwise
    return ImageReject(reason, str(e))


def _open(data: bytes) -> Image.Image:
    """Image.open, with anything a file's bytes can make it raise turned into an ImageReject."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageReject("images_unreadable", "not a recognised image format") from None
    except Image.DecompressionBombError as e:
        raise ImageReject("images_too_large", str(e)) from None
    except OSError as e:
        # Pillow parses headers here: a file cut inside its header fails now, not in load().
        raise _os_reject(e, "images_unreadable") from None
    except Exception as e:  # noqa: BLE001 - plugins raise SyntaxError, ValueError, struct.error... on bad bytes
        raise ImageReject("images_unreadable", f"{type(e).__name__}: {e}") from None


def decode_image(data: bytes, max_pixels: int, min_side: int) -> tuple[bytes, dict]:
    """Check and decode image bytes once; return bytes to store (RGB JPEG/PNG) and metadata."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    img = _open(data)
    width, height = img.size
    if width * height > max_pixels:
        raise ImageReject("images_too_large", f"{width}x{height} exceeds {max_pixels} pixels")
    if min(width, height) < min_side:
        raise ImageReject("images_too_small", f"{width}x{height} below {min_side} px")
    fmt, mode = img.format or "", img.mode
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            if fmt in KEEP_FORMATS and mode == "RGB":
                stored = data
            else:
                buf = io.BytesIO()
                _to_rgb(img).save(buf, format="PNG")
                stored = buf.getvalue()
    except OSError as e:
        raise _os_reject(e, "images_decode_error") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageReject("images_too_large", str(e)) from None
    except Exception as e:  # noqa: BLE001 - any decoder failure is this input's problem, not the run's
        raise ImageReject("images_decode_error", f"{type(e).__name__}: {e}") from None
    meta = {"width": width, "height": height, "source_format": fmt, "source_mode": mode}
    return stored, meta


def read_image_file(path: Path, limits) -> tuple[bytes, bytes, dict]:
    """(file bytes, stored bytes, metadata) of one image file within `limits` (max_file_bytes, max_pixels,
    min_side: the `images` config); ImageReject naming why not. Paths are confined by the caller."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageReject("images_missing", "file not found") from None
    except OSError as e:
        raise ImageReject("images_unreadable", str(e)) from None
    if size > limits.max_file_bytes:
        raise ImageReject("images_too_large", f"{size} bytes exceeds {limits.max_file_bytes}")
    try:
        data = path.read_bytes()
    except OSError as e:  # a folder, no permission, a bad sector: this file's problem, not the run's
        raise ImageReject("images_unreadable", str(e)) from None
    if not data:
        raise ImageReject("images_empty_file", "0 bytes")
    stored, meta = decode_image(data, limits.max_pixels, limits.min_side)
    return data, stored, meta
