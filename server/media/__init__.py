"""Media: what uploaded bytes are (sniffing), image work (validation, variants, blurhash) and
where the bytes live (storage backends). Below the domain: no database, no web framework.

Video probing / transcoding (`video.py`) and virus scanning (`scanning.py`) live here too."""

import importlib
from types import ModuleType


def optional_module(name: str) -> ModuleType:
    """`server.media.<name>` for the parts a build may lack (video, scanning): ImportError when
    absent, so callers refuse that work clearly instead of failing at import time."""
    return importlib.import_module(f"server.media.{name}")
