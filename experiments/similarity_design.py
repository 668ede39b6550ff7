"""The similarity design: which faces are judged, and balanced triplets or pairs of them.

The faces are a fixed subset of a prepared set (:func:`select_faces`: identities, images per
identity, chosen by ``selection_seed``, the same for every participant so that their RDMs
compare). The main trials are drawn up front from the session seed with a balanced design
(:func:`balanced_triplets`, :func:`balanced_pairs`): every pair of faces is covered, pairs as
equally often as the number of trials allows, and every prefix of the sequence as balanced as
it can be (a stopped session still covers its pairs evenly). Screen positions are shuffled per
trial; :func:`pair_coverage` counts how often each pair was judged.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> design = balanced_triplets(6, 10, rng)
>>> design.shape, len({tuple(sorted(p)) for t in design for p in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2]))})
((10, 3), 15)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError

from .similarity_config import FaceSelection

__all__ = ["select_faces", "pair_coverage", "balanced_triplets", "balanced_pairs"]


def select_faces(manifest: pd.DataFrame, faces: FaceSelection, where: str = "config") -> list[str]:
    """The stimulus ids judged: explicit ids, or identities x images (sorted, or drawn by the seed).

    Parameters
    ----------
    manifest : pandas.DataFrame
        The prepared set's manifest (``stimulus_id``, ``identity``).
    faces : FaceSelection
        The YAML's ``faces`` section.
    where : str
        The config file, for error messages.

    Returns
    -------
    list of str
        The judged stimulus ids, in a fixed order.
    """
    ids = manifest.stimulus_id.astype(str)
    if faces.stimulus_ids is not None:
        present = set(ids)
        missing = [s for s in faces.stimulus_ids if s not in present]
        if missing:
            raise InputError(f"{where}: key 'faces.stimulus_ids': '{missing[0]}' is not in the stimulus set")
        return list(faces.stimulus_ids)
    rng = np.random.default_rng(faces.selection_seed)
    identity = manifest.identity.astype(str)
    available = sorted(set(identity))
    chosen = available if faces.identities is None else list(faces.identities)
    unknown = [i for i in chosen if i not in set(available)]
    if unknown:
        raise InputError(f"{where}: key 'faces.identities': '{unknown[0]}' is not an identity of the stimulus set "
                         f"(it has {', '.join(available[:8])}{', ...' if len(available) > 8 else ''})")
    if faces.n_identities is not None:
        if faces.n_identities > len(chosen):
            raise InputError(f"{where}: key 'faces.n_identities' is {faces.n_identities} but only {len(chosen)} "
                             "identities are available")
        chosen = chosen[:faces.n_identities] if faces.pick == "first" else \
            [chosen[i] for i in sorted(rng.choice(len(chosen), faces.n_identities, replace=False))]
    selected: list[str] = []
    for person in chosen:
        own = sorted(ids[identity == person])
        if len(own) < faces.images_per_identity:
            raise InputError(f"{where}: key 'faces.images_per_identity' is {faces.images_per_identity} but identity "
                             f"'{person}' has {len(own)} image(s)")
        picked = own[:faces.images_per_identity] if faces.pick == "first" else \
            [own[i] for i in sorted(rng.choice(len(own), faces.images_per_identity, replace=False))]
        selected.extend(picked)
    return selected


def _require_items(n: int, needed: int, judgement: str) -> None:
    if n < needed:
        raise InputError(f"a {judgement} needs {needed} faces, the selection has {n}")


def _pairs_of(items: Sequence[int]) -> list[tuple[int, int]]:
    return [(min(a, b), max(a, b)) for i, a in enumerate(items) for b in items[i + 1:]]


def pair_coverage(trials: np.ndarray, n: int) -> np.ndarray:
    """(n, n) how often each pair of items appears together in ``trials`` (rows of item indices).

    Parameters
    ----------
    trials : (T, k) int array
        Each row the item indices of one trial.
    n : int
        The number of items.

    Returns
    -------
    (n, n) int64 array
        Symmetric counts, zero on the diagonal.
    """
    counts = np.zeros((n, n), dtype=np.int64)
    trials = np.asarray(trials)
    for a in range(trials.shape[1]):
        for b in range(a + 1, trials.shape[1]):
            np.add.at(counts, (trials[:, a], trials[:, b]), 1)
    return counts + counts.T


def balanced_triplets(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` triplets of ``n`` items (rows of 3 distinct indices, in screen order).

    Greedy balanced design: each triplet takes the least-covered pair (ties: items shown
    least, then at random) and the third item whose pairs with it are least covered. Every
    pair is covered once ``count`` passes roughly ``n (n - 1) / 6`` (each triplet covers three
    pairs); after that, pair counts differ by as little as the greedy choice can keep them.

    Parameters
    ----------
    n : int
        Number of items (faces), at least 3.
    count : int
        Number of triplets.
    rng : numpy.random.Generator
        Draws ties and screen orders.

    Returns
    -------
    (count, 3) int64 array
        Item indices, left to right on screen.
    """
    _require_items(n, 3, "triplet")
    pairs = np.zeros((n, n), dtype=np.int64)
    shown = np.zeros(n, dtype=np.int64)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    out = np.empty((count, 3), dtype=np.int64)
    for t in range(count):
        # lexicographic: pair count, then how often its items were shown, then chance
        score = pairs * (4.0 * n * (count + 1)) + (shown[:, None] + shown[None, :]) + rng.random((n, n)) * 0.5
        score[~upper] = np.inf
        i, j = np.unravel_index(int(np.argmin(score)), score.shape)
        cost = (pairs[i] + pairs[j]) * (4.0 * (count + 1)) + shown + rng.random(n) * 0.5
        cost[[i, j]] = np.inf
        k = int(np.argmin(cost))
        for a, b in ((i, j), (i, k), (j, k)):
            pairs[a, b] += 1
            pairs[b, a] += 1
        shown[[i, j, k]] += 1
        out[t] = rng.permutation([i, j, k])
    return out


def balanced_pairs(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` pairs of ``n`` items (rows of 2 indices, in screen order): every pair equally
    often (counts differ by at most one), shuffled, the screen side of each drawn at random.

    Parameters
    ----------
    n, count : int
        Number of items (faces, at least 2), and of pairs drawn.
    rng : numpy.random.Generator
        Draws the order and the screen sides.

    Returns
    -------
    (count, 2) int64 array
        Each row a pair: the left face's index, then the right face's.
    """
    _require_items(n, 2, "rating")
    every = np.array(_pairs_of(list(range(n))), dtype=np.int64)
    rounds = [every[rng.permutation(len(every))] for _ in range(-(-count // len(every)))]
    chosen = np.concatenate(rounds)[:count]
    flip = rng.random(count) < 0.5
    chosen[flip] = chosen[flip][:, ::-1]
    return chosen


# ----------------------------------------------------------------------------- observers
