"""The zoo's results table, generated from each checkpoint's ``metrics.json`` (never typed by hand).

``python -m vaelab results`` writes ``benchmarks/results/zoo.md`` and replaces the block between
``<!-- results:start -->`` and ``<!-- results:end -->`` in README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from vaelab.metric_keys import metric, with_se
from vaelab.paths import REPO_ROOT as ROOT  # noqa: E402
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(folder: Path) -> tuple[dict, dict, dict] | None:
    try:
        meta = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    history = {}
    if (folder / "history.json").is_file():
        history = json.loads((folder / "history.json").read_text())
    return meta, metrics, history


def _f(value, fmt="{:.3f}") -> str:
    return fmt.format(value) if isinstance(value, (int, float)) else "–"


def rows(checkpoints: Path) -> list[dict]:
    out = []
    for folder in sorted(p for p in checkpoints.iterdir() if p.is_dir()):
        loaded = _load(folder)
        if loaded is None:
            continue
        meta, m, h = loaded
        if "variant" not in meta:  # not an autoencoder checkpoint (the shipped classifier)
            continue
        epochs = h.get("epochs", [])
        levels = metric(m, "codebook.levels") or []
        out.append({
            "name": folder.name, "variant": meta["variant"], "dataset": meta.get("dataset"),
            "epochs": len(epochs), "train_s": sum(e.get("seconds", 0) for e in epochs),
            "selected_on": "validation split" if h.get("validation") else "test set (trained before the split)",
            "mse": metric(m, "reconstruction.mse"), "pca_mse": metric(m, "reconstruction.pca_mse"),
            "ratio": metric(m, "reconstruction.mse_ratio_to_pca"), "d": metric(m, "reconstruction.pca_dims"),
            "neg_elbo": metric(m, "loss.neg_elbo"),
            "iwae": metric(m, "likelihood.iwae_nll"), "iwae_se": metric(m, "likelihood.iwae_nll_se"),
            "iw": metric(m, "likelihood.iw_samples"), "iw_images": metric(m, "likelihood.images"),
            "au": metric(m, "posterior.active_units"), "dims": metric(m, "posterior.latent_dims"),
            "knn": metric(m, "embedding.knn_model"), "trust": metric(m, "embedding.trust_model"),
            "knn_pca": metric(m, "embedding.knn_pca"), "knn_umap": metric(m, "embedding.knn_umap"),
            "usage": metric(m, "codebook.usage_fraction"), "perplexity": metric(m, "codebook.perplexity"),
            "K": metric(m, "codebook.codebook_size"), "levels": levels,
            "per_variable": metric(m, "codebook.per_variable"),
            "clf": metric(m, "classifier.accuracy_on_reconstructions"),
            "fd": metric(m, "classifier.frechet_distance_samples"),
            "binarized": metric(m, "binarized_test_set"),
        })
    return out


def iwae_text(r: dict) -> str:
    """The IWAE bound with its standard error, k and which test images it was measured on."""
    if r["iwae"] is None:
        return "–"
    images = "all 10,000 test images" if r["iw_images"] == 10000 else f"the first {r['iw_images']:,} test images"
    return f"{with_se(r['iwae'], r['iwae_se'])} (k = {r['iw']}, {images})"


def usage_text(r: dict) -> str:
    """Code use: per level for a model with several (bottom first), per variable for a model whose
    positions are independent categorical variables (pooled counts would hide a stuck variable)."""
    if r["usage"] is None:
        return "–"
    if r["per_variable"]:
        pv = r["per_variable"]
        return (f"per variable: {pv['used_codes_mean']:.1f} of {r['K']} used, perplexity {pv['perplexity_mean']:.1f} "
                f"(mean of {pv['variables']}; lowest {pv['perplexity_min']:.1f})")
    if len(r["levels"]) > 1:
        names = ["bottom", "top"] if len(r["levels"]) == 2 else [f"level {i}" for i in range(len(r["levels"]))]
        return "; ".join(f"{n} {100 * lv['usage_fraction']:.1f} % of {lv['codebook_size']} ({lv['perplexity']:.0f})"
                         for n, lv in zip(names, r["levels"]))
    return f"{100 * r['usage']:.1f} % of {r['K']} ({r['perplexity']:.0f})"


def table(rs: list[dict]) -> str:
    head = ("| model | variant | data | epochs | epochs chosen on | train s | d | MSE | PCA MSE | AE/PCA | −ELBO "
            "| IWAE NLL | active units | 5-NN 2-D | trust 2-D | code usage (perplexity) | classifier acc. on recon "
            "| FD of samples |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rs:
        au = f"{r['au']}/{r['dims']}" if r["au"] is not None else "–"
        data = r["dataset"] + (" (binarized)" if r["binarized"] else "")
        lines.append(f"| {r['name']} | {r['variant']} | {data} | {r['epochs']} | {r['selected_on']} | {r['train_s']:.0f} "
                     f"| {r['d']} | {_f(r['mse'], '{:.4f}')} | {_f(r['pca_mse'], '{:.4f}')} | {_f(r['ratio'])} "
                     f"| {_f(r['neg_elbo'], '{:.2f}')} | {iwae_text(r)} | {au} | {_f(r['knn'])} | {_f(r['trust'])} "
                     f"| {usage_text(r)} | {_f(r['clf'])} | {_f(r['fd'], '{:.1f}')} |")
    return "\n".join(lines)


def targets(rs: list[dict]) -> str:
    """The issue's quality targets beside the published references and what the zoo reached."""
    by = {r["name"]: r for r in rs}

    def get(name, key, fmt="{:.3f}"):
        r = by.get(name)
        return _f(r[key], fmt) if r and r.get(key) is not None else "not trained yet"

    lines = ["| metric | published reference | target | vaelab zoo |", "| --- | --- | --- | --- |",
             f"| VAE NLL, binarized MNIST, IWAE bound | 86.76 nats (Burda et al. 2015, 1-layer VAE) | ≤ 86.76 "
             f"| {iwae_text(by['vae-32-binarized']) if 'vae-32-binarized' in by else 'not trained yet'} "
             "(vae-32-binarized) |",
             f"| 5-NN accuracy of the 2-D latent | VAE-2D 0.765, AE-2D 0.793, PCA 0.420 | VAE-2D ≥ 0.80, AE-2D ≥ 0.85 "
             f"| VAE-2D {get('vae-2d', 'knn')}, AE-2D {get('ae-2d', 'knn')}, PCA {get('ae-2d', 'knn_pca')} |",
             f"| trustworthiness of the 2-D latent | — | ≥ 0.95 | VAE-2D {get('vae-2d', 'trust')}, AE-2D {get('ae-2d', 'trust')} |",
             f"| Gumbel 20×10 categorical VAE −ELBO, binarized MNIST | 101.5 nats (Jang et al. 2016) | ≤ 101.5 "
             f"| {get('gumbel-vae', 'neg_elbo', '{:.2f}')} |",
             f"| VQ-VAE K=512 code usage, test set | plain VQ often < 5 % | ≥ 95 %, perplexity ≥ 0.6 K "
             f"| with restart {get('vq-vae', 'usage')} (perplexity {get('vq-vae', 'perplexity', '{:.0f}')}); "
             f"without {get('vq-vae-no-restart', 'usage')} |",
             f"| linear AE / PCA MSE at d = 2, 8, 32 | 1 | within 2 % | {get('linear-ae-2d', 'ratio')}, "
             f"{get('linear-ae-8', 'ratio')}, {get('linear-ae-32', 'ratio')} |",
             f"| AE / PCA MSE at d = 2, 8, 32 | 1 | < 1 | {get('ae-2d', 'ratio')}, {get('ae-8', 'ratio')}, "
             f"{get('ae-32', 'ratio')} |"]
    return "\n".join(lines)


def render(checkpoints: Path = ROOT / "checkpoints") -> str:
    rs = rows(checkpoints)
    chosen = sum(r["selected_on"] == "validation split" for r in rs)
    return ("Generated by `python -m vaelab results` from `checkpoints/*/metrics.json` "
            "(written by `python -m vaelab eval --write`). Every number is on the test set. "
            f"{chosen} of the {len(rs)} checkpoints validated on a split held out of their training images "
            "(\"epochs chosen on\"); the others chose their epoch while watching the test set, so their test "
            "numbers are somewhat optimistic. 5-NN accuracy: the share of test images whose label the majority "
            "vote of their 5 nearest training images (first 10,000) gets right; trustworthiness on the first 2,000 "
            "test images. Monte-Carlo figures (the IWAE bound) are given to the precision their standard error "
            "over images allows.\n\n### Against the published numbers\n\n"
            + targets(rs) + "\n\n### Every shipped checkpoint\n\n" + table(rs) + "\n")


def write(readme: Path = ROOT / "README.md", out: Path = ROOT / "benchmarks" / "results" / "zoo.md") -> str:
    text = render()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Zoo results\n\n" + text)
    content = readme.read_text()
    if START in content and END in content:
        before, rest = content.split(START, 1)
        _, after = rest.split(END, 1)
        readme.write_text(before + START + "\n" + text + END + after)
    return text
