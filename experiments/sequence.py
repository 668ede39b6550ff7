"""Trial-sequence building blocks: seeds derived from the session seed, block orders, balanced draws.

Everything random in a session comes from one recorded seed: :func:`derive_seed` gives each
use its own independent stream (``derive_seed(seed, "plan")``, ``derive_seed(seed, "observer",
trial)``), so the plan, the masks and a simulated observer's noise never share draws and a
resumed session sees exactly the numbers an uninterrupted one would.

Examples
--------
>>> derive_seed(7, "plan") == derive_seed(7, "plan") != derive_seed(7, "masks")
True
>>> block_order(["random", "guided"], 2, "fixed", np.random.default_rng(0))
['random', 'guided', 'random', 'guided']
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["new_seed", "derive_seed", "block_order", "balanced_labels", "Cycler"]


def new_seed() -> int:
    """A fresh session seed (31 bits: readable, and exact in every file format).

    Returns
    -------
    int
        A seed in ``0 .. 2**31 - 1`` from :mod:`secrets`.
    """
    return secrets.randbelow(2**31 - 1) + 1


def _key(part: int | str) -> int:
    return int(part) if isinstance(part, (int, np.integer)) else zlib.crc32(str(part).encode())


def derive_seed(seed: int, *keys: int | str) -> int:
    """An independent seed for one use of the session seed, named by ``keys``.

    Parameters
    ----------
    seed : int
        The session seed.
    *keys : int or str
        What the seed is for (``"plan"``, ``"masks"``, ``("observer", trial)``).

    Returns
    -------
    int
        A seed that depends only on ``seed`` and ``keys``.
    """
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(_key(k) for k in keys))
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(33))  # 31 bits


def block_order(
    blocks: Sequence[str], repeats: int, order: Literal["fixed", "shuffled"], rng: np.random.Generator
) -> list[str]:
    """The session's blocks: ``blocks`` ``repeats`` times, each repeat shuffled if asked.

    Parameters
    ----------
    blocks : sequence of str
        The conditions of one repeat, in order.
    repeats : int
        How many times the list is run.
    order : {"fixed", "shuffled"}
        Shuffle each repeat or not.
    rng : numpy.random.Generator
        Draws the shuffles.

    Returns
    -------
    list of str
        The condition of every block of the session.
    """
    result: list[str] = []
    for _ in range(repeats):
        group = list(blocks)
        if order == "shuffled":
            group = [group[i] for i in rng.permutation(len(group))]
        result.extend(group)
    return result


def balanced_labels(labels: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` labels, each as often as possible (counts differ by at most one), in random order.

    Parameters
    ----------
    labels : sequence of str
        The labels (classes).
    n : int
        How many to draw.
    rng : numpy.random.Generator
        Draws the extra labels and the order.

    Returns
    -------
    list of str
        ``n`` labels in random order.
    """
    labels = list(labels)
    extra = [labels[i] for i in rng.permutation(len(labels))[: n % len(labels)]]
    pool = labels * (n // len(labels)) + extra
    return [pool[i] for i in rng.permutation(len(pool))]


class Cycler:
    """Draws items without replacement, reshuffling when all were used (every item equally often).

    Parameters
    ----------
    items : sequence
        What is drawn.
    rng : numpy.random.Generator
        Draws the shuffles.
    """

    def __init__(self, items: Sequence, rng: np.random.Generator) -> None:
        if len(items) == 0:
            raise ValueError("nothing to draw from")
        self.items = list(items)
        self.rng = rng
        self.queue: list = []

    def draw(self):
        if not self.queue:
            self.queue = [self.items[i] for i in self.rng.permutation(len(self.items))]
        return self.queue.pop()
