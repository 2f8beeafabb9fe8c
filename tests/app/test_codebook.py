"""The codebook tab: its numbers against the raw code maps, the code-map editor, the prior."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from vaelab.app import catalogue, state
from vaelab.app.tabs import codebook as cb

MODELS = [c.name for c in cb.codebook_models(catalogue.scan_checkpoints())]
pytestmark = pytest.mark.skipif(not MODELS, reason="no model with a codebook among the checkpoints")


def test_only_models_with_maps_of_codes_are_offered():
    for name in MODELS:
        m = state.load(name)
        assert m.info.latent == "discrete" and all(len(s) == 2 for s in m.info.index_shapes)
    assert "gumbel-vae" not in MODELS  # 20 categorical variables: no map


@pytest.mark.parametrize("name", MODELS)
def test_perplexity_and_dead_codes_match_the_raw_indices(name):
    """The stats line, computed independently from the cached test code maps."""
    m = state.load(name)
    for level in range(m.info.levels):
        raw = m.arrays[f"indices_level{level}"].reshape(-1).astype(np.int64)
        n = np.bincount(raw, minlength=m.info.codebook_size)
        p = n[n > 0] / n.sum()
        text = cb.stats_markdown(m, level)
        used, dead = int((n > 0).sum()), int((n == 0).sum())
        assert f"{used} of {m.info.codebook_size} codes used" in text and f"**{dead} dead**" in text
        assert f"perplexity **{np.exp(-(p * np.log(p)).sum()):.1f}**" in text
        # the bars are the sorted counts
        heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill', cb.usage_svg(n, "t"))]
        assert len(heights) == used and heights == sorted(heights, reverse=True)


def _pixels(data_url: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_editing_a_cell_redecodes_the_image():
    from vaelab import viz
    name = MODELS[0]
    m = state.load(name)
    v = json.loads(cb.show_image(name, None, 3)["cells"])
    assert v["edited"] == [] and v["maps"] == v["original"] and v["decoded"] == v["decoded_original"]
    v["sel"] = [1, 2]
    old = v["maps"][0][1][2]
    new = (old + 1) % m.info.codebook_size
    out = cb.edit_cell({"value": json.dumps(v), "code": new})
    after = json.loads(out["value"])
    assert after["maps"][0][1][2] == new and after["edited"] == [[1, 2]] and after["original"] == v["original"]
    assert f"now holds code **{new}**" in after["note"]
    # the decoded image is the model's decoding of the edited map, computed here directly
    maps = [np.asarray(a) for a in after["maps"]]
    assert np.array_equal(_pixels(after["decoded"]), viz.to_display(cb.decode_maps(m, maps)))
    assert not np.array_equal(_pixels(after["decoded"]), _pixels(v["decoded"]))
    # the cell's use on the test set, as the page says it when the cell is clicked
    assert after["counts"][old] == int((m.arrays["indices_level0"] == old).sum())
    # putting the encoder's code back leaves no edited cell
    back = json.loads(cb.edit_cell({"value": out["value"], "code": old})["value"])
    assert back["edited"] == [] and back["maps"] == v["original"]


@pytest.mark.parametrize("bad", ["x", -1, 10**6, None, 1.5, float("nan")])
def test_a_code_out_of_range_is_a_clear_error(bad):
    v = json.loads(cb.show_image(MODELS[0], None, 0)["cells"])
    v["sel"] = [0, 0]
    assert "codes 0 to" in cb.edit_cell({"value": json.dumps(v), "code": bad})["error"]
    assert "Click a cell" in cb.edit_cell({"value": json.dumps({**v, "sel": None}), "code": 1})["error"]


@pytest.mark.parametrize("tamper", [
    lambda v: {**v, "maps": [[[10**9]]]}, lambda v: {**v, "maps": "x"}, lambda v: {**v, "original": None},
    lambda v: {**v, "sel": [99, 99]}, lambda v: {**v, "sel": ["a", 1]}, lambda v: {**v, "model": "../../etc"},
    lambda v: {**v, "model": None}, lambda v: [1, 2], lambda v: {**v, "level": 7}])
def test_a_tampered_editor_state_is_refused_with_a_message(tamper):
    """The state comes back from the page: anything that does not fit the model is refused."""
    v = json.loads(cb.show_image(MODELS[0], None, 0)["cells"])
    v["sel"] = [0, 0]
    out = cb.edit_cell({"value": json.dumps(tamper(v)), "code": 1})
    if "value" in out:  # an out-of-range level falls back to the first; the edit is then valid
        assert json.loads(out["value"])["level"] == 0
    else:
        assert out["error"] and "Traceback" not in out["error"]
    assert "error" in cb.edit_cell("not a dict") and "error" in cb.edit_cell({"value": "{not json", "code": 1})


def test_prior_samples_change_with_temperature_and_refuse_nonsense():
    import gradio as gr
    with_prior = [n for n in MODELS if getattr(state.load(n).model, "_code_prior", None) is not None]
    if not with_prior:
        pytest.skip("no codebook model with a trained prior here")
    a, b = cb.sample_prior(with_prior[0], 0.3, 0), cb.sample_prior(with_prior[0], 2.5, 0)
    assert not np.array_equal(a["samples"], b["samples"]) and "PixelCNN" in a["samples_note"]
    for t in ("hot", float("nan"), 0, 100):
        with pytest.raises(gr.Error, match="temperature"):
            cb.sample_prior(with_prior[0], t, 0)


def test_selecting_a_model_fills_the_tab():
    out = cb.select_model(MODELS[0], None, 0, MODELS)
    assert out["usage"].startswith("<svg") and "codes used" in out["stats"]
    assert out["atlas"].shape[0] > 100 and json.loads(out["cells"])["maps"][0]


def test_the_replay_shows_the_recorded_counts_of_each_epoch():
    recorded = [n for n in MODELS if cb.history_codes(state.load(n))]
    if not recorded:
        out = cb.replay_epoch(MODELS[0], 1)
        assert "before code use was recorded" in out["epoch_usage"]
        pytest.skip("no shipped codebook model recorded its code use per epoch")
    name = recorded[0]
    recs = cb.history_codes(state.load(name))
    out = cb.replay_epoch(name, 1)
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill', out["epoch_usage"])]
    assert len(heights) == recs[0]["codes"][0]["used_codes"]
    assert cb.replay_epoch(name, 10**6)["epoch"]["value"] == len(recs)


@pytest.mark.parametrize("name", MODELS)
def test_the_atlas_shows_codes_that_draw_something_in_order_of_use(name):
    """Each code shown changes the background map's picture (recomputed here by decoding the
    painted map directly); they come in order of use; a map of the background code alone is what
    the old atlas showed for every code: blank."""
    m = state.load(name)
    codes, _ = cb.atlas_codes(name, 0)
    if not codes:
        pytest.skip(f"no code of {name} draws anything on its background")
    c = cb.counts(m, 0)
    assert list(c[codes]) == sorted(c[codes], reverse=True)
    background = cb.painted(m, 0, [int(np.argmax(c))])[0]
    for k in codes[:5]:
        maps = [np.full(tuple(s), int(np.argmax(cb.counts(m, lv))), np.int64)
                for lv, s in enumerate(m.info.index_shapes)]
        h, w = maps[0].shape
        maps[0][(h - max(1, h // 3)) // 2:(h - max(1, h // 3)) // 2 + max(1, h // 3),
                (w - max(1, w // 3)) // 2:(w - max(1, w // 3)) // 2 + max(1, w // 3)] = k
        alone = cb.decode_maps(m, maps)
        assert float((alone - background).abs().mean()) > 1e-3
