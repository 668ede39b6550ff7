"""Model variant names, and how two variants relate (torch-free, so ``analysis`` can use it).

A variant is named ``vgg16[-bn][-w<width>]-<pretrain>-<task>-s<seed>`` (DESIGN.md), e.g.
``vgg16-imagenet-gender-s0``. ``task`` is ``gender``, ``identity`` or ``faces`` (a
face-pretraining source trained for identity). The seed study's comparisons are between
variants that differ in exactly one factor: :func:`variant_relation` names it.

Examples
--------
>>> spec = parse_variant_name("vgg16-bn-w0.25-imagenet-gender-s3")
>>> spec.batch_norm, spec.width, spec.pretrain, spec.task, spec.seed
(True, 0.25, 'imagenet', 'gender', 3)
>>> variant_relation("vgg16-imagenet-gender-s0", "vgg16-faces-gender-s0")
'pretrain'
>>> variant_relation("vgg16-imagenet-gender-s0", "vgg16-faces-identity-s1")
'other'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError

__all__ = ["VariantName", "parse_variant_name", "variant_relation", "RELATIONS", "FACTORS"]

_NAME = re.compile(
    r"vgg16(?P<bn>-bn)?(?:-w(?P<width>[0-9.]+))?-(?P<pretrain>[a-z0-9_]+)"
    r"-(?P<task>gender|identity|faces)-s(?P<seed>[0-9]+)"
)
# the factors a variant name fixes, and the relation of two variants that differ in one of them
FACTORS = ("arch", "width", "pretrain", "task", "seed")
RELATIONS = ("same", "seed", "task", "pretrain", "arch", "width", "other")


@dataclass(frozen=True)
class VariantName:
    """What a variant name says: architecture, width, pretraining, task and seed.

    Parameters
    ----------
    batch_norm : bool
        ``vgg16-bn`` (True) or ``vgg16``.
    width : float
        Width multiplier in (0, 1] (1 is written as nothing, else ``-w<width>``).
    pretrain : str
        Pretraining token: ``none``, ``imagenet``, ``faces``, ``vggface`` or a file's label.
    task : str
        ``gender``, ``identity`` or ``faces`` (a face-pretraining source).
    seed : int
        The training seed.

    Examples
    --------
    >>> VariantName(False, 1.0, "imagenet", "gender", 0).name
    'vgg16-imagenet-gender-s0'
    """

    batch_norm: bool
    width: float
    pretrain: str
    task: str
    seed: int

    @property
    def arch(self) -> str:
        return "vgg16-bn" if self.batch_norm else "vgg16"

    @property
    def name(self) -> str:
        width = "" if self.width == 1.0 else f"-w{self.width:g}"
        return f"{self.arch}{width}-{self.pretrain}-{self.task}-s{self.seed}"

    @property
    def is_face_source(self) -> bool:
        """A face-pretraining source (task slot ``faces``), trained for identity."""
        return self.task == "faces"

    @property
    def label_task(self) -> str:
        """The classification task of the output layer (``identity`` for a face source)."""
        return "identity" if self.is_face_source else self.task

    def __str__(self) -> str:
        return self.name


def parse_variant_name(name: str) -> VariantName:
    """Read a variant name; a malformed or non-canonical name is an InputError.

    Parameters
    ----------
    name : str
        ``vgg16[-bn][-w<width>]-<pretrain>-<task>-s<seed>``, written the canonical way.

    Returns
    -------
    VariantName
        The name's parts.

    Examples
    --------
    >>> parse_variant_name("vgg16-w0.5-none-identity-s2").width
    0.5
    """
    match = _NAME.fullmatch(str(name))
    if not match:
        raise InputError(f"'{name}' is not a variant name (expected "
                         "vgg16[-bn][-w<width>]-<pretrain>-<gender|identity|faces>-s<seed>, "
                         "e.g. vgg16-imagenet-gender-s0)")
    try:
        width = float(match["width"]) if match["width"] else 1.0
    except ValueError:
        raise InputError(f"'{name}': width '{match['width']}' is not a number") from None
    if not 0 < width <= 1:
        raise InputError(f"'{name}': width must lie in (0, 1]")
    spec = VariantName(bool(match["bn"]), width, match["pretrain"], match["task"], int(match["seed"]))
    if spec.name != name:
        raise InputError(f"'{name}' is not written the canonical way; use '{spec.name}'")
    return spec


def variant_relation(a: str | VariantName, b: str | VariantName) -> str:
    """How two variants relate: the one factor they differ in, ``same``, or ``other`` (several).

    One of :data:`RELATIONS`: ``seed`` (same model trained from another random seed),
    ``task`` (another finetuning task), ``pretrain`` (other pretraining data), ``arch`` or
    ``width``; ``other`` when they differ in more than one factor.

    Parameters
    ----------
    a, b : str or VariantName
        The two variants (names are parsed with :func:`parse_variant_name`).

    Returns
    -------
    str
        One of :data:`RELATIONS`.

    Examples
    --------
    >>> variant_relation("vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1")
    'seed'
    """
    a = a if isinstance(a, VariantName) else parse_variant_name(a)
    b = b if isinstance(b, VariantName) else parse_variant_name(b)
    differ = [f for f in FACTORS if getattr(a, f) != getattr(b, f)]
    if not differ:
        return "same"
    return differ[0] if len(differ) == 1 else "other"
