"""Every shipped checkpoint still computes what it computed when the values were pinned
(``python -m tests.pin_outputs``): encodings, reconstructions, loss terms, samples and
importance weights on seeded inputs. A refactor that changes any of them fails here."""

import json
import math

import pytest
import torch

from .pin_outputs import FIXTURE, outputs, shipped

PINS = json.loads(FIXTURE.read_text())


def test_every_shipped_checkpoint_is_pinned():
    assert sorted(PINS) == shipped()


def _close(a, b, path):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f"{path}[{i}]")
    else:
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4), f"{path}: now {a}, pinned {b}"


@pytest.mark.parametrize("name", sorted(PINS))
def test_outputs_match_the_pinned_values(name):
    torch.set_num_threads(1)
    _close(outputs(name), PINS[name], name)
