"""An explored RGB model, for the README's screenshots: a small diffusers ``AutoencoderKL`` trained
here for a few minutes on 32×32 colour patches of scikit-learn's two bundled photographs (a
temple in China and a flower; no download), then opened with ``vaelab.explore``.

    python assets/explore_example.py [--steps 1500] [--port 7870] [--folder assets/explore-patches]

The patches are written as an image folder (one sub-folder per photo), so the app reads them the
way it reads anyone's: torchvision's ``ImageFolder``, resized and centre-cropped to the model's
size. Training: Adam, the mean squared error plus a small KL to N(0, I) (as latent diffusion
trains its first stage, without the adversarial and perceptual terms), one thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def write_patches(folder: Path, per_photo: int = 1500, size: int = 32, seed: int = 0) -> None:
    """Random ``size``×``size`` crops of the two photos, halved first (more of a photo per patch)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = load_sample_images()
    for image, path in zip(photos.images, photos.filenames):
        name = Path(path).stem
        (folder / name).mkdir(parents=True, exist_ok=True)
        small = np.asarray(Image.fromarray(image).resize((image.shape[1] // 2, image.shape[0] // 2), Image.BILINEAR))
        for k in range(per_photo):
            y, x = rng.integers(0, small.shape[0] - size), rng.integers(0, small.shape[1] - size)
            Image.fromarray(small[y:y + size, x:x + size]).save(folder / name / f"{k:04d}.png")


def train(x: torch.Tensor, steps: int, seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64),
                        layers_per_block=1, latent_channels=4, norm_num_groups=16, sample_size=32)
    opt = torch.optim.Adam(vae.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    began = time.time()
    for step in range(1, steps + 1):
        batch = x[torch.randint(len(x), (32,), generator=g)] * 2 - 1
        post = vae.encode(batch).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = ((rec - batch) ** 2).mean() + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: mse {float(((rec - batch) ** 2).mean()) / 4:.4f} (0…1 pixels), {time.time() - began:.0f} s")
    return vae.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--folder", default=str(Path("/tmp") / "vaelab-explore-patches"))
    parser.add_argument("--no-launch", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.folder)
    if not folder.is_dir():
        write_patches(folder)
    import vaelab
    from vaelab.external import images
    saved = folder.parent / (folder.name + "-vae")
    if (saved / "config.json").is_file():  # trained by an earlier run
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(saved).eval()
    else:
        vae = train(images(folder, (3, 32, 32)).x, args.steps)
        vae.save_pretrained(saved)
    vaelab.explore(vae, folder, name="sd-style VAE on photo patches", launch=not args.no_launch,
                   server_port=args.port)


if __name__ == "__main__":
    main()
