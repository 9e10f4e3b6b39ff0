"""Print pins (name==version) of the runtime dependency closure of the installed `nexgate`
distribution (extras excluded): `make constraints` writes them to constraints.txt."""

import re
from importlib import metadata

from packaging.requirements import Requirement

seen: dict[str, str] = {}


def walk(name: str, extras: set[str]) -> None:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return
    for req_text in dist.requires or []:
        req = Requirement(req_text)
        if req.marker is not None:
            if not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
        child = re.sub(r"[-_.]+", "-", req.name).lower()
        if child in seen:
            continue
        try:
            seen[child] = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue
        walk(req.name, set(req.extras))


walk("nexgate", set())
print("\n".join(f"{k}=={v}" for k, v in sorted(seen.items())))
