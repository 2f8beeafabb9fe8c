"""The Models tab: the tables of shipped checkpoints and registered variants."""

from __future__ import annotations

from vaelab.app.tabs import models


def test_tables_keep_their_columns_when_a_description_holds_a_pipe():
    import re

    for table in (models.variants_table(), models.checkpoints_table()):
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(counts) == 1, table  # "p(z₁|z₂)" must not open a new column
    assert "p(z₁\\|z₂)" in models.variants_table()
