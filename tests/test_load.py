"""The load test's quick form: 25 ``gradio_client`` visitors at once against the app in its own
process (slider decodes, picks, map switches, drawings, an upload and a training job), two rounds
each, about a second between a visitor's actions (as in the full form, which has six rounds). The full form's results are committed in
``benchmarks/results/load_test.json`` (``python benchmarks/load_test.py``)."""

from __future__ import annotations

import sys


from .conftest import ROOT

GROWTH_BOUND_MB = 300


def test_25_visitors_at_once_get_every_answer_whole_and_in_time():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import load_test

    r = load_test.run(clients=25, rounds=2, think=1.0)  # the shipped models only, as on a fresh machine
    ratios = {kind: (row["ratio"], row["median_ratio"]) for kind, row in r["events"].items()}
    print(f"25 visitors, {sum(row['n'] for row in r['events'].values())} events in {r['seconds']} s: p95 / single "
          f"client's (p95, median) = {ratios}; server grew {r['server_growth_mb']} MB; errors {r['errors'][:3]}")
    assert r["errors"] == []  # no error and no answer cut short (gradio_client raises on either)
    assert r["still_serving"]
    assert "Loaded" in r.get("upload_status", "") and "training_ms" in r
    assert all(row["n"] == 25 * 2 for row in r["events"].values())  # every visitor's every event answered
    assert r["server_growth_mb"] < GROWTH_BOUND_MB
    # The target, p95 ≤ 5× the single client's for decodes and picks, is the full form's (six
    # rounds, committed in benchmarks/results/). With two rounds, the p95 is the third-slowest of
    # 50 answers, and every visitor's first event meets the upload and the training job starting:
    # up to 8× in runs here. So this guards against what the app used to show (10-23×) with room
    # for that noise, and the typical answer (the median) against any general slowdown.
    for kind in ("slider decode", "pick a test image"):
        row = r["events"][kind]
        assert row["ratio"] <= 12 and row["median_ratio"] <= 3, (kind, row)
