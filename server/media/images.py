"""Images: validation by full decode (with a decompression-bomb guard) and the served variants.

Everything here is blocking CPU work on files: callers run it in a thread. Every file written
is re-encoded from decoded pixels, so no metadata of the upload (EXIF, GPS, XMP, comments)
reaches anything served; the EXIF orientation is applied to the pixels first.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from server.media import blurhash

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "HEIF"}
# name -> (box, crop): the spec's sizes; "original" keeps the uploaded size.
VARIANTS: dict[str, tuple[int | None, bool]] = {
    "thumbnail": (150, True),
    "medium": (600, False),
    "large": (1200, False),
    "original": (None, False),
}
WEBP_QUALITY = 80
JPEG_QUALITY = 85
BLURHASH_SIDE = 32


class ImageRejected(Exception):
    """Not an image we can serve; `reason` says why in words for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed (orientation applied)
    height: int
    format: str


@dataclass(frozen=True)
class VariantFile:
    name: str  # thumbnail | medium | large | original
    format: str  # webp | jpeg
    path: Path
    width: int
    height: int
    bytes: int

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True)
class ImageOutput:
    width: int
    height: int
    blurhash: str
    files: list[VariantFile]


def _enable_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIF_SUPPORTED = _enable_heif()


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open and fully decode the first frame, refusing bombs before decoding them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"more than {max_pixels // 1_000_000} megapixels") from None
        except UnidentifiedImageError:
            raise ImageRejected("not an image we can read (unknown or corrupt header)") from None
        except (OSError, SyntaxError, ValueError):
            raise ImageRejected("truncated or corrupt image") from None
    if image.format not in ACCEPTED_FORMATS:
        image.close()
        raise ImageRejected(f"{image.format or 'unknown'} images are not accepted")
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise ImageRejected("the image has no pixels")
    if width * height > max_pixels:
        image.close()
        raise ImageRejected(f"{width}x{height} is more than {max_pixels // 1_000_000} megapixels")
    try:
        image.load()  # the full decode: a truncated or corrupt file fails here
    except (OSError, SyntaxError, ValueError, EOFError):
        image.close()
        raise ImageRejected("truncated or corrupt image") from None
    return image


def validate_image(path: Path, *, max_pixels: int) -> ImageInfo:
    """Decode the whole image; ImageRejected says why it cannot be accepted."""
    image = _open(path, max_pixels)
    with image:
        oriented = ImageOps.exif_transpose(image)
        return ImageInfo(oriented.width, oriented.height, image.format or "")


def _flatten(image: Image.Image, *, keep_alpha: bool) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        if keep_alpha:
            return rgba
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _resize(image: Image.Image, box: int | None, crop: bool) -> Image.Image:
    if box is None:
        return image
    if crop:
        return ImageOps.fit(image, (box, box), Image.Resampling.LANCZOS)
    if image.width <= box and image.height <= box:
        return image  # never upscaled
    copy = image.copy()
    copy.thumbnail((box, box), Image.Resampling.LANCZOS)
    return copy


def placeholder(image: Image.Image) -> str:
    small = image.convert("RGB")
    small.thumbnail((BLURHASH_SIDE, BLURHASH_SIDE), Image.Resampling.BILINEAR)
    return blurhash.encode(list(small.getdata()), small.width, small.height)


def _save(image: Image.Image, path: Path, fmt: str, *, full_size: bool) -> None:
    # The full-size copy is the slow one (12 MP): faster encoder settings there; the sizes
    # shown in feeds get the smallest files.
    if fmt == "webp":
        image.save(path, "WEBP", quality=WEBP_QUALITY, method=2 if full_size else 4)
    else:
        image.save(path, "JPEG", quality=JPEG_QUALITY, optimize=not full_size, progressive=True)


def render_variants(src: Path, out_dir: Path, *, max_pixels: int) -> ImageOutput:
    """Write every variant of `src` into `out_dir` as `<name>.webp` and `<name>.jpg`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with _open(src, max_pixels) as decoded:
        oriented = ImageOps.exif_transpose(decoded)
    with_alpha = _flatten(oriented, keep_alpha=True)
    opaque = _flatten(oriented, keep_alpha=False) if with_alpha.mode == "RGBA" else with_alpha
    for image in (with_alpha, opaque):
        image.info = {}  # no EXIF / XMP / ICC / comments carried into the encoders
    files: list[VariantFile] = []
    for fmt, source in (("webp", with_alpha), ("jpeg", opaque)):
        # Largest first, each size resized from the previous one (cheaper than from the
        # original every time, and as sharp at these ratios).
        previous = source
        for name in ("original", "large", "medium", "thumbnail"):
            box, crop = VARIANTS[name]
            resized = _resize(previous, box, crop)
            if not crop:
                previous = resized
            path = out_dir / f"{name}.{'jpg' if fmt == 'jpeg' else 'webp'}"
            _save(resized, path, fmt, full_size=box is None)
            files.append(
                VariantFile(name, fmt, path, resized.width, resized.height, path.stat().st_size)
            )
    return ImageOutput(opaque.width, opaque.height, placeholder(previous), files)
