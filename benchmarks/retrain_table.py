"""Before/after table of the checkpoints retrained on the validation split.

Compares each checkpoint's ``metrics.json`` and ``history.json`` now with the same files at a
base commit (the last one at which its epochs were chosen while watching the test set), for every
checkpoint that validates on a held-out split now but did not then. Writes
``benchmarks/results/validation_retrain.md``.

    python benchmarks/retrain_table.py [--base 0bde7b7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = [("reconstruction", "mse", "MSE", "{:.4f}"), ("loss", "neg_elbo", "−ELBO", "{:.2f}"),
        ("likelihood", "iwae_nll", "IWAE", "{:.2f}"), ("embedding", "knn_latent_full", "5-NN latent", "{:.3f}"),
        ("embedding", "knn_model", "5-NN 2-D", "{:.3f}"), ("classifier", "accuracy_on_reconstructions", "clf acc", "{:.3f}")]


def at(base: str, path: str) -> dict | None:
    done = subprocess.run(["git", "show", f"{base}:{path}"], cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="0bde7b7", help="the commit before the retraining")
    args = parser.parse_args()
    rows = []
    for folder in sorted((ROOT / "checkpoints").iterdir()):
        now_h, now_m = folder / "history.json", folder / "metrics.json"
        if not (now_h.is_file() and now_m.is_file()):
            continue
        h, m = json.loads(now_h.read_text()), json.loads(now_m.read_text())
        old_h = at(args.base, f"checkpoints/{folder.name}/history.json")
        old_m = at(args.base, f"checkpoints/{folder.name}/metrics.json")
        if not h.get("validation") or (old_h or {}).get("validation"):
            continue
        cells = [folder.name, f"{len((old_h or {}).get('epochs', [])) or '—'} → {len(h['epochs'])}"]
        for section, key, _, fmt in KEYS:
            a = ((old_m or {}).get(section) or {}).get(key)
            b = (m.get(section) or {}).get(key)
            cells.append("–" if a is None and b is None else
                         f"{fmt.format(a) if a is not None else 'new'} → {fmt.format(b) if b is not None else '–'}")
        rows.append("| " + " | ".join(cells) + " |")
    head = "| model | epochs | " + " | ".join(k[2] for k in KEYS) + " |"
    text = ("# Retrained on the validation split\n\nBefore: the shipped checkpoint at commit "
            f"`{args.base}` (epochs chosen while watching the test set); after: retrained with the zoo recipe, "
            "validating on 5,000 images held out of MNIST's training set (10 % of the 8×8 digits') and "
            "stopping once the validation loss has not improved for 5 epochs. Every number is on the test set.\n\n"
            + "\n".join([head, "|" + " --- |" * (len(KEYS) + 2), *rows]) + "\n")
    out = ROOT / "benchmarks" / "results" / "validation_retrain.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
