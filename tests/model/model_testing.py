"""Helpers shared by the model tests (a uniquely named module, not conftest, so imports
cannot pick up another folder's conftest)."""

from __future__ import annotations

from pathlib import Path


def variant_configs(path: Path):
    """The expanded variant configs of a grid file."""
    from model.config import expand_grid, load_grid

    return expand_grid(load_grid(path), str(path))


def state_of(folder: Path) -> dict:
    import torch

    return torch.load(folder / "model.pt", weights_only=True)
