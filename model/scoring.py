"""A target's scores on (masked) images: logits through shared trunk passes, per image and per set.

:class:`SharedTrunk` computes the logits of many variants on the same batches with one pass of
each shared trunk; :func:`image_scores` gives each image's true-class probability and
correctness, :func:`masked_scores` and :func:`score_summary` the set-level accuracy, balanced
accuracy and mean true-class probability that the masking curves (:mod:`model.transfer`) record.

Examples
--------
>>> score_summary(np.array([0.9, 0.2]), np.array([1.0, 0.0]), np.array([0, 1]))
{'accuracy': 0.5, 'balanced_accuracy': 0.5, 'p_true': 0.55}
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from .device import autocast

__all__ = ["SharedTrunk", "image_scores", "balanced_weights", "score_summary", "masked_scores"]


def _add_weights(digest, module):
    """``digest`` updated with every parameter and buffer of ``module`` (names and bytes)."""
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest


class SharedTrunk:
    """Logits of image batches with one trunk pass per batch, however many variants share it.

    Head-trained variants of one pretraining arm share their convolutional trunk, and often
    their FC layers too (a face-pretrained arm; the ImageNet arm's seeded FC init differs per
    seed), and a masked batch (source map, mode, fraction) is the same for every target tested
    on the same images. So the convolutions, nearly all of the cost, run once per arm and
    batch, the FC layers once per distinct set of them, and each variant applies its own head.
    Parts are told apart by a hash of their weights (and the input size), batches by a hash of
    their pixels: a variant with its own trunk, or other images, never reuses anything.
    ``tests/model/test_scoring.py`` checks the logits equal ``predict_logits``.

    Parameters
    ----------
    max_bytes : int
        Cached trunk outputs kept at most; the oldest batches are dropped beyond it.
    """

    def __init__(self, max_bytes: int = 2 * 1024**3) -> None:
        self.max_bytes = max_bytes  # the oldest batches are dropped beyond this
        # by id(variant), holding the variant too so that its id cannot be reused by another one
        self._keys: dict[int, tuple[Any, tuple[str, str] | None]] = {}
        self._cache: dict[tuple[str, str], torch.Tensor] = {}
        self.hits = self.misses = 0

    def trunk_key(self, variant) -> tuple[str, str] | None:
        """Hashes of the conv trunk and of conv trunk + FC layers but the last (None: not a VGG)."""
        if id(variant) not in self._keys:
            net = variant.net
            keys = None
            if all(hasattr(net, part) for part in ("features", "avgpool", "classifier")):
                digest = hashlib.blake2b(str(variant.input_size).encode(), digest_size=16)
                conv = _add_weights(digest, net.features).hexdigest()
                keys = (conv, _add_weights(digest, net.classifier[:-1]).hexdigest())
            self._keys[id(variant)] = (variant, keys)
        return self._keys[id(variant)][1]

    def _cached(self, key: tuple[str, str], compute) -> torch.Tensor:
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        self.misses += 1
        self._cache[key] = value = compute()
        while len(self._cache) > 1 and sum(v.nbytes for v in self._cache.values()) > self.max_bytes:
            del self._cache[next(iter(self._cache))]
        return value

    def logits(self, variant, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits (N, C) of grey stimuli (N, H, W), as ``variant.predict_logits`` gives them."""
        keys = self.trunk_key(variant)
        if keys is None:
            return variant.predict_logits(images, batch_size=batch_size)
        images = np.ascontiguousarray(images, dtype=np.float32)
        pixels = hashlib.blake2b(images.tobytes(), digest_size=16).hexdigest() + str(images.shape)
        net = variant.net

        def batches(values: torch.Tensor | np.ndarray, step) -> torch.Tensor:
            return torch.cat([step(values[start:start + batch_size]) for start in range(0, len(values), batch_size)])

        def conv_features() -> torch.Tensor:
            return batches(images, lambda x: net.features(variant.to_input(x)))

        def fc_features() -> torch.Tensor:
            conv = self._cached((keys[0], pixels), conv_features)
            return batches(conv, lambda f: net.classifier[:-1](torch.flatten(net.avgpool(f), 1)))

        with torch.no_grad(), autocast(variant.device):  # AMP on CUDA only; float32 elsewhere
            penultimate = self._cached((keys[1], pixels), fc_features)
            return net.classifier[-1](penultimate).float().cpu().numpy()


def image_scores(variant, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                 trunks=None) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the true-class probability and whether the answer is correct (float 0/1).

    Parameters
    ----------
    variant : LoadedVariant
        The target.
    images : numpy.ndarray
        Grey images (n, H, W).
    labels : numpy.ndarray
        Class index per image.
    batch_size : int
        Images per forward pass.
    trunks : SharedTrunk, optional
        Shares trunk passes between variants.

    Returns
    -------
    p_true : numpy.ndarray
        Softmax probability of the true class.
    correct : numpy.ndarray
        1.0 where the predicted class is the true one, else 0.0.
    """
    logits = (trunks.logits(variant, images, batch_size) if trunks is not None
              else variant.predict_logits(images, batch_size=batch_size))
    logits = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    correct = (logits.argmax(1) == labels).astype(np.float64)
    return prob[np.arange(len(labels)), labels].astype(np.float64), correct


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-image weights whose mean times correctness is the balanced accuracy.

    The balanced accuracy is the mean recall over the classes present; an image's weight is
    ``n / (classes present * n of the image's class)``.

    Parameters
    ----------
    labels : numpy.ndarray
        Class index per image.

    Returns
    -------
    numpy.ndarray
        One weight per image (mean 1).

    Examples
    --------
    >>> balanced_weights(np.array([0, 0, 0, 1])).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return len(labels) / (len(classes) * counts[inverse])


def score_summary(p_true: np.ndarray, correct: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Set-level scores from per-image ones.

    Parameters
    ----------
    p_true : numpy.ndarray
        True-class probability per image.
    correct : numpy.ndarray
        Correctness per image (0/1, or a mean over repeats).
    labels : numpy.ndarray
        Class index per image.

    Returns
    -------
    dict of str to float
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present) and ``p_true``.
    """
    recall = [correct[labels == c].mean() for c in np.unique(labels)]
    return {"accuracy": float(correct.mean()), "balanced_accuracy": float(np.mean(recall)),
            "p_true": float(p_true.mean())}


def masked_scores(variant, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                  trunks=None) -> dict[str, float]:
    """Accuracy, balanced accuracy and mean true-class probability of ``variant`` on ``images``.

    Parameters
    ----------
    variant, images, labels, batch_size, trunks
        As :func:`image_scores` (the images masked or not).

    Returns
    -------
    dict of str to float
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present), ``p_true``.
    """
    p_true, correct = image_scores(variant, images, labels, batch_size, trunks)
    return score_summary(p_true, correct, labels)
