"""How long a full garbage collection holds every request up in the built app, before and after
``vaelab.app.freeze_heap()`` (what ``app.py`` calls once the app is built).

    python benchmarks/gc_pause.py [--data-dir DATA]

Prints the number of objects the collector tracks and the median of five full collections
(``gc.collect()``) each way.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def full_collection_ms(times: int = 5) -> float:
    spent = []
    for _ in range(times):
        t = time.perf_counter()
        gc.collect()
        spent.append((time.perf_counter() - t) * 1000)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.data_dir:
        os.environ["VAELAB_DATA"] = args.data_dir
    os.environ.setdefault("VAELAB_FETCH", "0")
    import torch

    from vaelab.app import build, freeze_heap

    torch.set_num_threads(1)
    demo = build()  # noqa: F841  (kept alive, as the server keeps it)
    tracked = len(gc.get_objects())
    before = full_collection_ms()
    freeze_heap()
    after = full_collection_ms()
    print(json.dumps({"objects_tracked": tracked, "full_collection_ms": round(before, 1),
                      "after_freeze_ms": round(after, 2), "frozen": gc.get_freeze_count()}, indent=1))


if __name__ == "__main__":
    main()
