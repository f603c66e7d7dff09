"""Shared fixtures.

Real data lives outside the repository, in `../shared` (or `$HUMACT_SHARED`): it is
not ours to redistribute. Tests that need it take the `shared` fixture, which skips
them with the reason when it is absent. Unit tests never need it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HUMACT_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the shared real data; skips the test when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED} (set HUMACT_SHARED to its location)")
    return SHARED


def shared_file(*parts: str) -> Path:
    """A file under the shared data, skipping the calling test when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the shared real data is absent")
    return path


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (small models train fastest so on a shared machine, where
    several threads contend); restored afterwards. Use with `pytest.mark.usefixtures`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
