"""The zoo's results table, generated from each checkpoint's ``metrics.json`` (never typed by hand).

``python -m vaelab results`` writes ``benchmarks/results/zoo.md`` and replaces the block between
``<!-- results:start -->`` and ``<!-- results:end -->`` in README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

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
        rec, emb = m.get("reconstruction", {}), m.get("embedding", {})
        lik, post, cb = m.get("likelihood", {}), m.get("posterior", {}), m.get("codebook", {})
        clf, loss = m.get("classifier", {}), m.get("loss", {})
        epochs = h.get("epochs", [])
        out.append({
            "name": folder.name, "variant": meta["variant"], "dataset": meta.get("dataset"),
            "epochs": len(epochs), "train_s": sum(e.get("seconds", 0) for e in epochs),
            "mse": rec.get("mse"), "pca_mse": rec.get("pca_mse"), "ratio": rec.get("mse_ratio_to_pca"),
            "d": rec.get("latent_numbers", rec.get("pca_dims")), "neg_elbo": loss.get("neg_elbo"),
            "iwae": lik.get("iwae_nll"), "iw": lik.get("iw_samples"), "iw_images": lik.get("images"),
            "au": post.get("active_units"), "dims": post.get("latent_dims"),
            "knn": emb.get("knn_model"), "trust": emb.get("trust_model"),
            "knn_pca": emb.get("knn_pca"), "knn_umap": emb.get("knn_umap"),
            "usage": cb.get("usage_fraction"), "perplexity": cb.get("perplexity"), "K": cb.get("codebook_size"),
            "clf": clf.get("accuracy_on_reconstructions"), "fd": clf.get("frechet_distance_samples"),
            "binarized": m.get("binarized_test_set"),
        })
    return out


def table(rs: list[dict]) -> str:
    head = ("| model | variant | data | epochs | train s | d | MSE | PCA MSE | AE/PCA | −ELBO | IWAE NLL (k) "
            "| active units | 5-NN 2-D | trust 2-D | code usage (perplexity) | classifier acc. on recon | FD of samples |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rs:
        iwae = f"{r['iwae']:.2f} (k={r['iw']}, {r['iw_images']} imgs)" if r["iwae"] is not None else "–"
        usage = (f"{100 * r['usage']:.1f} % of {r['K']} ({r['perplexity']:.0f})" if r["usage"] is not None else "–")
        au = f"{r['au']}/{r['dims']}" if r["au"] is not None else "–"
        data = r["dataset"] + (" (binarized)" if r["binarized"] else "")
        lines.append(f"| {r['name']} | {r['variant']} | {data} | {r['epochs']} | {r['train_s']:.0f} | {r['d']} "
                     f"| {_f(r['mse'], '{:.4f}')} | {_f(r['pca_mse'], '{:.4f}')} | {_f(r['ratio'])} "
                     f"| {_f(r['neg_elbo'], '{:.2f}')} | {iwae} | {au} | {_f(r['knn'])} | {_f(r['trust'])} "
                     f"| {usage} | {_f(r['clf'])} | {_f(r['fd'], '{:.2f}')} |")
    return "\n".join(lines)


def targets(rs: list[dict]) -> str:
    """The issue's quality targets beside the published references and what the zoo reached."""
    by = {r["name"]: r for r in rs}

    def get(name, key, fmt="{:.3f}"):
        r = by.get(name)
        return _f(r[key], fmt) if r and r.get(key) is not None else "not trained yet"

    lines = ["| metric | published reference | target | vaelab zoo |", "| --- | --- | --- | --- |",
             f"| VAE NLL, binarized MNIST, IWAE bound | 86.76 nats (Burda et al. 2015, 1-layer VAE) | ≤ 86.76 "
             f"| {get('vae-32-binarized', 'iwae', '{:.2f}')} (vae-32-binarized) |",
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
    return ("Generated by `python -m vaelab results` from `checkpoints/*/metrics.json` "
            "(written by `python -m vaelab eval --write`). Every number is on the test set.\n\n### Against the published numbers\n\n"
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
