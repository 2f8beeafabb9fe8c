"""The Train tab: knobs and their limits, a streamed run, stop, resume, replay and the download."""

from __future__ import annotations

import dataclasses
import zipfile
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch

from vaelab.app.tabs import train as tr
from vaelab.checkpoint import load_checkpoint
from vaelab.registry import get_entry

FIELDS = [k.field for k in tr.KNOBS]


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def values(variant="vae", dataset="digits", **changes) -> list:
    d = tr.defaults(variant, dataset)
    out = {k.field: d.get(k.field) for k in tr.KNOBS}
    out.update(changes)
    return [out[f] for f in FIELDS]


def session(name="alice"):
    return SimpleNamespace(session_hash=name)


def test_each_variant_shows_the_knobs_its_config_has_at_its_defaults():
    for entry in tr.variants():
        shown = tr.show_variant(entry.name, "digits")
        config = {f.name: f.default for f in dataclasses.fields(get_entry(entry.name).config_cls)}
        for knob in tr.KNOBS:
            update = shown[knob.field]
            if knob.train:
                assert update["visible"]
            elif update["visible"] and knob.field == "latent_dim" and not {"k", "sparsity_weight"} & set(config):
                assert update["value"] == tr.TAB_LATENT == 2, entry.name  # the 2-D demo a class expects
            elif update["visible"]:
                assert knob.field in config and update["value"] == config[knob.field], (entry.name, knob.field)
            elif knob.field in config and knob.field != "latent_dim":
                pytest.fail(f"{entry.name}: {knob.field} is in its config but hidden")
    assert not tr.show_variant("vq-vae")["latent_dim"]["visible"]  # a codebook model is sized by K
    assert tr.show_variant("vq-vae")["beta"]["label"] == "commitment weight β"


@pytest.mark.parametrize("changes, words", [
    ({"latent_dim": 0}, "latent size must be between 1 and 256"),
    ({"latent_dim": 2.5}, "latent size is a whole number"),
    ({"beta": float("nan")}, "β (weight of the KL term) must be between"),
    ({"lr": 10.0}, "learning rate must be between"),
    ({"epochs": None}, "epochs: a number"),
    ({"kl_warmup": "sometimes"}, "KL warm-up: choose one of none, linear, cyclical"),
])
def test_settings_outside_their_limits_are_refused_with_the_knob_named(changes, words):
    with pytest.raises(gr.Error) as error:
        tr.make_spec("vae", "digits", dict(zip(FIELDS, values(**changes))))
    assert words in str(error.value.message)


def test_combinations_that_cannot_work_are_refused_before_queuing():
    with pytest.raises(gr.Error, match="cannot exceed the latent size"):
        tr.make_spec("k-sparse-ae", "digits", dict(zip(FIELDS, values("k-sparse-ae", k=50, latent_dim=20))))
    with pytest.raises(gr.Error, match="lowest τ"):
        tr.make_spec("dvae", "digits", dict(zip(FIELDS, values("dvae", tau_start=0.5, tau_floor=2.0))))
    with pytest.raises(gr.Error, match="not on this server"):
        tr.make_spec("vae", "cifar-1000", dict(zip(FIELDS, values())))
    with pytest.raises(gr.Error, match="kind of autoencoder"):
        tr.make_spec("no-such-kind", "digits", {})


def test_every_variant_gets_a_spec_that_builds_on_the_digits():
    for entry in tr.variants():
        spec = tr.make_spec(entry.name, "digits", dict(zip(FIELDS, values(entry.name))))
        assert spec.variant == entry.name and spec.train["epochs"] == tr.DATASET_TRAIN["digits"]["epochs"]


def run_to_end(gen) -> list[dict]:
    return list(gen)


def test_a_run_streams_its_charts_and_pictures_and_downloads_as_a_loadable_checkpoint(tmp_path):
    views = run_to_end(tr.start_training(session(), [], "vae", "digits", *values(latent_dim=2, epochs=4)))
    last = views[-1]
    assert "Finished" in last["status"]
    job = tr.JOBS[last["job"]]
    assert len(job.epochs) == 4
    assert last["losses"].startswith("<svg") and "recon" in last["losses"] and "beta" not in last["losses"]
    assert last["per_epoch"].startswith("<svg") and "validation" in last["per_epoch"]
    assert last["rebuilt"]["value"].ndim == 2 and last["map"]["value"].shape[2] == 3
    assert last["rebuilt"]["label"].endswith("after epoch 4 (the last)")
    assert last["scrub"]["visible"] and last["scrub"]["maximum"] == 4
    path = last["download"]["value"]
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "unzipped")
        assert not any("training_state" in n for n in z.namelist())
    folder = next((tmp_path / "unzipped").iterdir())
    model = load_checkpoint(folder)
    assert model.config.latent_dim == 2
    original = load_checkpoint(job.folder)
    for a, b in zip(model.state_dict().values(), original.state_dict().values()):
        assert torch.equal(a, b)


def test_replay_shows_each_epochs_map_and_only_the_owner_can_act_on_a_job():
    last = run_to_end(tr.start_training(session("bob"), [], "ae", "digits", *values("ae", latent_dim=2, epochs=3)))[-1]
    first = tr.scrub(last["job"], 1, session("bob"))
    third = tr.scrub(last["job"], 3, session("bob"))
    assert not np.array_equal(first["map"]["value"], third["map"]["value"]) and "epoch 1" in first["per_epoch"]
    assert "after epoch 1" in first["map"]["label"] and "after epoch 1" in first["rebuilt"]["label"]  # the replay says when
    job = tr.JOBS[last["job"]]
    assert np.array_equal(third["map"]["value"], tr.pictures(job)[1])  # the last epoch is what the run ended on
    with pytest.raises(gr.Error, match="no training job of yours"):
        tr.scrub(last["job"], 1, session("mallory"))
    with pytest.raises(gr.Error, match="no training job of yours"):
        tr.stop_training(last["job"], session("mallory"))


def test_stop_keeps_the_last_epoch_and_resume_continues_it(monkeypatch):
    vals = values(latent_dim=2, epochs=200, batch_size=8)
    stream = tr.start_training(session("carol"), [], "vae", "digits", *vals)
    for view in stream:
        job = tr.JOBS[view["job"]]
        if len(job.epochs) >= 2:
            tr.stop_training(view["job"], session("carol"))
            break
    rest = list(stream)
    assert job.status == "stopped" and job.saved_epoch >= 2
    assert "Stopped" in rest[-1]["status"] and rest[-1]["resume"]["interactive"]
    kept = job.saved_epoch
    resumed = tr.resume_training(job.id, [], session("carol"))
    view = next(resumed)
    again = tr.JOBS[view["job"]]
    while len(again.epochs) <= kept + 1 and not again.done:
        view = next(resumed)
    tr.stop_training(again.id, session("carol"))
    list(resumed)
    records = [e["record"]["epoch"] for e in again.epochs]
    assert records[:kept] == list(range(1, kept + 1))  # the charts carry the first run's epochs
    assert records[kept] == kept + 1  # and training went on from the epoch that was kept


def test_a_finished_model_joins_this_sessions_pickers_and_loads_like_a_shipped_one():
    from vaelab.app import catalogue, state
    from vaelab.app.tabs import latent_map, sliders

    last = list(tr.start_training(session("dave"), ["older"], "vae", "digits", *values(latent_dim=2, epochs=3)))[-1]
    assert last["mine"][0] == "older" and len(last["mine"]) == 2
    name = last["mine"][-1]
    assert "model pickers" in last["status"]
    [card] = catalogue.trained_cards(last["mine"])
    assert card.name == name and card.title.startswith("your vae") and card.has_sliders and card.dataset == "digits"
    shipped = catalogue.scan_checkpoints()
    assert name not in dict((v, k) for k, v in latent_map.model_choices(shipped))  # not for anyone else
    assert name in [v for _, v in latent_map.model_choices(shipped + [card])]
    assert name in [v for _, v in sliders.model_choices(shipped + [card])]
    m = state.load(name)
    assert m.n_test == len(tr.JOBS[last["job"]].start["labels"]) and "coords_pca" in m.arrays
    shown = latent_map.select_map_model(name, latent_map.PROJ_LATENT, 3)
    assert shown["map"]


def test_a_stacked_autoencoders_layer_wise_phases_show_in_the_loss_chart():
    last = list(tr.start_training(session("erin"), [], "stacked-ae", "digits",
                                  *values("stacked-ae", epochs=2, pretrain_epochs=1)))[-1]
    job = tr.JOBS[last["job"]]
    layers = len(job.spec.config["hidden"]) + 1  # each encoder layer pretrained for one epoch, then fine-tuned
    assert job.start["epochs"] == layers + 2 and len(job.epochs) == layers + 2
    phases = [name for _, _, name in tr.phase_spans(job.steps)]
    assert phases == [f"pretrain-{i}" for i in range(layers)] + ["finetune"]
    for name in phases:
        assert f">{name}</text>" in last["losses"]


def test_one_job_per_session_and_a_bounded_queue(monkeypatch):
    stream = tr.start_training(session("frank"), [], "vae", "digits", *values(epochs=200, batch_size=8))
    view = next(stream)
    with pytest.raises(gr.Error, match="already have a training job"):
        next(tr.start_training(session("frank"), [], "ae", "digits", *values("ae")))
    monkeypatch.setattr(tr, "MAX_WAITING", 0)
    with pytest.raises(gr.Error, match="already waiting"):
        next(tr.start_training(session("grace"), [], "ae", "digits", *values("ae")))
    tr.stop_training(view["job"], session("frank"))
    list(stream)


def test_old_job_folders_are_removed_and_busy_ones_kept(runs):
    import os
    import time

    old, fresh = runs / "s" / "old-run", runs / "s" / "fresh-run"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
    past = time.time() - tr.KEEP_RUNS - 10
    os.utime(old, (past, past))
    tr.prune_runs()
    assert not old.exists() and fresh.exists()


def test_a_model_trained_on_mnist_rebuilds_drawings_in_the_draw_tab():
    from vaelab.app import state
    from vaelab.app.tabs import draw
    from tests.app.conftest import drawing_of_a_one

    if state.dataset("mnist") is None:
        pytest.skip("MNIST is not here: a model for the draw tab's 28×28 pad cannot be trained")
    plan = draw.draw_plan()
    last = list(tr.start_training(session("heidi"), [], "ae", "mnist",
                                  *values("ae", "mnist", latent_dim=8, epochs=1, batch_size=256)))[-1]
    name = last["mine"][-1]
    assert [c.name for c in draw.trained_for(plan, last["mine"])] == [name]
    out = draw.draw(drawing_of_a_one(), [name])
    assert "your ae" in out["recons"] and out["recons"].count("<figure>") == 1
    assert name not in [v for v in plan.choices()]  # the shipped list is unchanged for everyone else


@pytest.mark.parametrize("variant", ["vae", "beta-vae", "sparse-ae", "contractive-ae", "denoising-ae", "vq-vae",
                                     "gumbel-vae", "hvae", "vae-gan"])
def test_the_step_line_is_a_true_equation_with_the_rest_apart(variant):
    """The shown sum is the loss (checked against the model's own terms on a batch), and terms that
    are not part of it (neg_elbo, β itself, perplexity) are listed apart, never added in."""
    import re
    import types

    import torch

    import vaelab
    from vaelab.app.tabs import train as tr

    torch.manual_seed(0)
    model = vaelab.create(variant, tiny=True)
    out = model.loss(torch.rand(8, *model.config.image_shape))
    terms = {k: float(v) for k, v in out.terms.items()}
    job = types.SimpleNamespace(lock=__import__("threading").Lock(), steps=[{"step": 3, "terms": terms}],
                                spec=types.SimpleNamespace(variant=variant, config={}))
    line = tr.live_numbers(job)
    assert line.startswith(f"Step 3: loss {terms['total']:.4g}")
    equation = tr.loss_equation(terms, tr.config_weights(job.spec))
    if variant in ("vae", "beta-vae", "sparse-ae", "contractive-ae", "denoising-ae", "vq-vae"):
        assert equation, line
    if equation:
        assert sum(terms[k] * f for k, _, f in equation) == pytest.approx(terms["total"], rel=1e-3)
        shown = line.split(" = ", 1)[1].split(" (per image")[0]
        for k, n, _ in equation:
            assert re.search(rf"\b{k} ", shown)
        also = line.split("Also: ", 1)[1] if "Also: " in line else ""
        assert not any(re.search(rf"\b{k} ", also) for k, _, _ in equation)
    if "neg_elbo" in terms and equation:
        assert "neg_elbo" not in line.split(" = ", 1)[1].split(" (per image")[0] or terms.get("beta", 1) == 1


def test_a_status_line_names_no_server_folder_and_says_each_thing_once():
    from vaelab.app.tabs import train as tr

    long = ("early stopping after epoch 5: no better validation loss for 5 epochs (best: epoch 3, 24.1000). "
            "The last good checkpoint is kept in /tmp/vaelab-runs/3f9a/run-1: it holds epoch 5.")
    text = tr.visitor_words(long)
    assert "/tmp" not in text and "3f9a" not in text and text.startswith("Early stopping after epoch 5")
    assert tr.visitor_words("Finished: 10 epochs.") == "10 epochs."
    assert "stopped" not in tr.visitor_words("stopped (time limit) at step 300, after epoch 3.").lower()
