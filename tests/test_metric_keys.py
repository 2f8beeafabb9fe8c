"""Every metrics key a reader asks for is one evaluation writes: the names are listed once
(:mod:`vaelab.metric_keys`), each is found in a real ``metrics.json``, and every ``metric(...)``
call in the package names a listed key."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import vaelab
from vaelab.metric_keys import KEYS, metric, with_se

from .conftest import ROOT

PACKAGE = Path(vaelab.__file__).parent
SHIPPED = sorted((ROOT / "checkpoints").glob("*/metrics.json"))
# written only by evaluation code newer than some shipped files, or only for some kinds of model
NEWER = {"likelihood.iwae_nll_se", "likelihood.whole_test_set", "codebook.per_variable"}


def _keys_in(metrics: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in metrics.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys_in(v, f"{prefix}{k}.")
    return out


def test_every_listed_key_is_in_a_real_metrics_file(tmp_path, digits):
    """The shipped files, plus the files evaluation writes now for a tiny VAE and a tiny
    categorical VAE (for the keys newer than some shipped files)."""
    if not SHIPPED:
        pytest.skip("no shipped checkpoints in this checkout")
    found = set().union(*(_keys_in(json.loads(p.read_text())) for p in SHIPPED))
    from vaelab.evaluate import EvalSettings, evaluate

    data = digits.subset(200, 60)
    for variant in ("vae", "gumbel-vae"):
        model = vaelab.create(variant, tiny=True)
        vaelab.fit(model, data, epochs=1, progress=False)
        folder = vaelab.save_checkpoint(model, tmp_path / variant, dataset="digits", seed=0)
        written = evaluate(folder, data, EvalSettings(iw_samples=4, iw_images=0, n_train=200, n_trust=50, umap=False),
                           write=True)
        found |= _keys_in(written)
    missing = sorted(set(KEYS) - found)
    assert not missing, f"listed but never written: {missing}"
    assert not (NEWER - found)


def _metric_calls() -> list[tuple[str, str]]:
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "metric"
                    and len(node.args) >= 2):
                name = node.args[1]
                calls.append((str(path.relative_to(PACKAGE)),
                              name.value if isinstance(name, ast.Constant) else ast.unparse(name)))
    return calls


def test_every_reader_asks_for_a_listed_key():
    calls = _metric_calls()
    assert {"hub.py", "results.py"} <= {p for p, _ in calls}
    from vaelab.hub import CARD_ROWS

    for path, name in calls:
        if path == "hub.py" and name == "key":  # the model card's rows, checked below
            continue
        assert name in KEYS, (path, name)
    assert all(key in KEYS for key, _ in CARD_ROWS)
    with pytest.raises(KeyError, match="not a metrics key"):
        metric({}, "likelihood.nll_iwae")  # the key the model card used to read, which nothing writes


def test_the_model_card_shows_the_iwae_bound_of_a_checkpoint_that_has_one(tmp_path):
    from vaelab.hub import model_card

    folder = ROOT / "checkpoints" / "vae-32-binarized"
    if not (folder / "metrics.json").is_file():
        pytest.skip("vae-32-binarized is not shipped in this checkout")
    m = json.loads((folder / "metrics.json").read_text())
    card = model_card(folder, "someone/vae")
    assert "IWAE bound" in card and f"{m['likelihood']['iwae_nll']:.1f}" in card


def test_monte_carlo_figures_keep_the_digits_their_error_allows():
    assert with_se(82.78251, 0.8312) == "82.8 ± 0.8"
    assert with_se(82.78251, 0.048) == "82.78 ± 0.05"
    assert with_se(101.3, 3.2) == "101 ± 3"
    assert with_se(82.78251, None) == "82.8"
