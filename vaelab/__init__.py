"""vaelab: every autoencoder variant behind one interface.

The library trains, saves, loads and inspects autoencoders, from the classic shallow
autoencoder to variational, discrete and hierarchical ones. Every model honours the contract in
:mod:`vaelab.models.base`, and every place that lists or loads models reads the registry in
:mod:`vaelab.registry`.

Quick tour::

    import vaelab
    data = vaelab.load_dataset("digits")                 # bundled, no network needed
    model = vaelab.create("vae", image_shape=data.image_shape, latent_dim=2)
    history = vaelab.fit(model, data, epochs=5, out_dir="runs/vae")
    model = vaelab.load_checkpoint("runs/vae")            # needs only the folder
    latent = model.encode(data.test_x[:8])                # Latent(z=..., mean=..., logvar=...)
    images = model.reconstruct(data.test_x[:8])

    vaelab.explore(my_model, my_images)                  # the app on any autoencoder (see vaelab.external)
"""

from vaelab.version import __version__  # noqa: E402

from vaelab.registry import REGISTRY, create, get_entry, list_variants  # noqa: E402
from vaelab.data import Dataset, DatasetNotFoundError, load_dataset  # noqa: E402
from vaelab.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from vaelab.train import NonFiniteLossError, TrainSettings, fit  # noqa: E402



def explore(model, data=None, **kwargs):
    """Open the app on ``model`` (a vaelab model, any PyTorch module with ``encode``/``decode``, a
    diffusers ``AutoencoderKL``/``VQModel`` or a pythae model) over ``data`` (a tensor of images,
    a dataset or a folder of images). See :func:`vaelab.app.explored.explore` for the options."""
    from vaelab.app.explored import explore as run

    return run(model, data, **kwargs)


__all__ = [
    "explore",
    "__version__",
    "REGISTRY",
    "create",
    "get_entry",
    "list_variants",
    "Dataset",
    "DatasetNotFoundError",
    "load_dataset",
    "load_checkpoint",
    "save_checkpoint",
    "NonFiniteLossError",
    "TrainSettings",
    "fit",
]
