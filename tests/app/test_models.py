"""The Models tab: the tables of shipped checkpoints and registered variants."""

from __future__ import annotations

import pytest

from vaelab.app.tabs import models


def test_tables_keep_their_columns_when_a_description_holds_a_pipe():
    import re

    for table in (models.variants_table(), models.checkpoints_table()):
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(counts) == 1, table  # "p(z₁|z₂)" must not open a new column
    assert "p(z₁\\|z₂)" in models.variants_table()


def test_a_diffusers_folder_zipped_into_the_models_tab_is_told_how_to_explore_it(tmp_path):
    import zipfile

    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (pip install -r requirements-dev.txt)")
    from vaelab.app.upload import UploadError, receive

    vae = diffusers.AutoencoderKL(block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
                                  up_block_types=("UpDecoderBlock2D",), latent_channels=2, norm_num_groups=4,
                                  sample_size=8)
    vae.save_pretrained(tmp_path / "sd-vae")
    archive = tmp_path / "sd-vae.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in (tmp_path / "sd-vae").iterdir():
            z.write(f, f"sd-vae/{f.name}")
    with pytest.raises(UploadError, match="diffusers model folder.*vaelab explore diffusers:") as caught:
        receive(archive, tmp_path / "uploads")
    assert "Traceback" not in str(caught.value)
