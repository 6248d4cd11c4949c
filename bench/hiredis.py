"""redis-py with hiredis or without it, in the processes a stack starts (its API and worker).

redis-py parses replies and packs commands with hiredis whenever `import hiredis` succeeds. The
runs without it put `bench/without_hiredis/` first on those processes' PYTHONPATH: its
`sitecustomize` makes that import fail, as if the package were not installed. Which one a
process runs with is read back from its memory map, where hiredis's extension shows once loaded.
"""

import os

from bench.procs import ROOT, process_tree

WITH = "hiredis"
WITHOUT = "python"  # redis-py's own parser and packer, in Python
VARIANTS = (WITH, WITHOUT)
BLOCKER = ROOT / "bench" / "without_hiredis"


def environment(variant: str) -> dict[str, str]:
    """What a stack's processes need on top of their environment to run as `variant`."""
    if variant == WITH:
        return {}
    path = os.pathsep.join(filter(None, [str(BLOCKER), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


def loaded(pid: int) -> bool | None:
    """Whether hiredis is loaded in `pid` and every process under it (None: in some only)."""
    seen = set()
    for each in process_tree(pid):
        try:
            with open(f"/proc/{each}/maps") as maps:
                seen.add("/hiredis/" in maps.read())
        except OSError:
            continue
    return seen.pop() if len(seen) == 1 else None
