"""VGG-16 variants built from torchvision's own ``VGG`` class, and the layer bookkeeping training needs.

Width 1.0 is torchvision's exact ``vgg16`` / ``vgg16_bn``; a smaller width scales every conv
and hidden FC layer but keeps the 13 conv + 3 FC topology (for CPU-scale runs and tests).
The network is also seen as one flat sequence of layers (``features.*``, ``avgpool``,
``flatten``, ``classifier.*``) so training can freeze a prefix, cache its outputs and train the
rest.

Examples
--------
>>> net = build_vgg16(2, width=0.125)
>>> [name for name, _ in flat_layers(net)][-1]
'classifier.6'
>>> first_trainable(net, "block5")
'features.24'
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import vgg as tv_vgg

__all__ = [
    "TRAINABLE",
    "build_vgg16",
    "init_like_torchvision",
    "flat_layers",
    "first_trainable",
    "split_at",
    "freeze_prefix",
    "head",
    "replace_head",
]

# which part of the network trains: the new head, the 3 FC layers, conv blocks k..5 + FC, all
TRAINABLE = ("head", "classifier", "block5", "block4", "block3", "block2", "all")
_VGG16_CFG = tv_vgg.cfgs["D"]


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def init_like_torchvision(module: nn.Module) -> None:
    """Initialise conv, BN and linear layers exactly as torchvision's ``VGG.__init__`` does.

    Parameters
    ----------
    module : torch.nn.Module
        A network or one layer; every conv, batch-norm and linear layer in it is re-initialised
        in place from torch's current random state.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def build_vgg16(
    num_classes: int, *, width: float = 1.0, batch_norm: bool = False, dropout: float = 0.5
) -> tv_vgg.VGG:
    """A randomly initialised VGG-16 (torchvision's ``VGG`` class) with ``num_classes`` outputs.

    Parameters
    ----------
    num_classes
        Size of the output layer (``classifier.6``).
    width
        Multiplier for conv channels and the two hidden FC layers; 1.0 builds torchvision's
        exact ``vgg16`` (``vgg16_bn`` with ``batch_norm=True``).
    batch_norm
        Batch normalisation after every conv (torchvision's ``vgg16_bn``).
    dropout
        Dropout probability of the two hidden FC layers.

    Returns
    -------
    torchvision.models.VGG
        The network, in training mode.

    Examples
    --------
    >>> sum(p.numel() for p in build_vgg16(1000).parameters())
    138357544
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if not 0 < width <= 1:
        raise ValueError(f"width must lie in (0, 1], got {width}")
    if width == 1.0:
        builder = tv_vgg.vgg16_bn if batch_norm else tv_vgg.vgg16
        return builder(weights=None, num_classes=num_classes, dropout=dropout)
    cfg = [v if v == "M" else _scaled(int(v), width) for v in _VGG16_CFG]
    hidden = _scaled(4096, width)
    # build on the meta device so torchvision's 25088x4096 classifier is never allocated
    with torch.device("meta"):
        net = tv_vgg.VGG(tv_vgg.make_layers(cfg, batch_norm=batch_norm), num_classes,
                         init_weights=False, dropout=dropout)
        net.classifier = nn.Sequential(
            nn.Linear(cfg[-2] * 7 * 7, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
    net = net.to_empty(device="cpu")
    for m in net.modules():  # buffers (BN running stats) are not parameters: reset them too
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
    init_like_torchvision(net)
    return net


def flat_layers(net: tv_vgg.VGG) -> list[tuple[str, nn.Module]]:
    """The network as one sequence of named layers, in forward order (flatten included).

    Parameters
    ----------
    net : torchvision.models.VGG
        The network.

    Returns
    -------
    list of (str, torch.nn.Module)
        ``features.<i>``, ``avgpool``, ``flatten``, ``classifier.<i>``.
    """
    layers = [(f"features.{i}", m) for i, m in enumerate(net.features)]
    layers += [("avgpool", net.avgpool), ("flatten", nn.Flatten(1))]
    layers += [(f"classifier.{i}", m) for i, m in enumerate(net.classifier)]
    return layers


def _conv_block_starts(net: tv_vgg.VGG) -> list[int]:
    """Index in ``net.features`` of the first layer of each of the 5 conv blocks."""
    starts = [0]
    for i, m in enumerate(net.features):
        if isinstance(m, nn.MaxPool2d) and i + 1 < len(net.features):
            starts.append(i + 1)
    return starts


def first_trainable(net: tv_vgg.VGG, trainable: str) -> str:
    """Name of the first layer that trains under ``trainable`` (see :data:`TRAINABLE`).

    Parameters
    ----------
    net : torchvision.models.VGG
        The network.
    trainable : str
        The trainable part of a variant's recipe.

    Returns
    -------
    str
        A name of :func:`flat_layers`.
    """
    if trainable == "head":
        return f"classifier.{len(net.classifier) - 1}"
    if trainable == "classifier":
        return "classifier.0"
    if trainable == "all":
        return "features.0"
    if trainable.startswith("block") and trainable[5:].isdigit():
        starts = _conv_block_starts(net)
        block = int(trainable[5:])
        if 1 <= block <= len(starts):
            return f"features.{starts[block - 1]}"
    raise ValueError(f"unknown trainable part '{trainable}' (choose {', '.join(TRAINABLE)})")


def split_at(net: tv_vgg.VGG, name: str) -> tuple[nn.Sequential, nn.Sequential]:
    """(prefix, suffix) sequences that share ``net``'s modules; suffix starts at layer ``name``.

    ``suffix(prefix(x))`` equals ``net(x)``.

    Parameters
    ----------
    net : torchvision.models.VGG
        The network.
    name : str
        A name of :func:`flat_layers`.

    Returns
    -------
    prefix, suffix : torch.nn.Sequential
        The layers before ``name`` and from ``name`` on.
    """
    layers = flat_layers(net)
    names = [n for n, _ in layers]
    if name not in names:
        raise ValueError(f"no layer named '{name}'")
    cut = names.index(name)
    return (nn.Sequential(*[m for _, m in layers[:cut]]),
            nn.Sequential(*[m for _, m in layers[cut:]]))


def freeze_prefix(net: tv_vgg.VGG, trainable: str) -> tuple[nn.Sequential, nn.Sequential]:
    """Freeze every layer before the trainable part; return (frozen prefix, trainable suffix).

    Frozen layers get ``requires_grad=False`` and stay in eval mode (no dropout, BN running
    statistics fixed), so the prefix is a fixed function: its outputs can be cached.

    Parameters
    ----------
    net : torchvision.models.VGG
        The network (changed in place).
    trainable : str
        The trainable part.

    Returns
    -------
    prefix, suffix : torch.nn.Sequential
        As :func:`split_at` at :func:`first_trainable`.
    """
    prefix, suffix = split_at(net, first_trainable(net, trainable))
    for p in prefix.parameters():
        p.requires_grad_(False)
    for p in suffix.parameters():
        p.requires_grad_(True)
    prefix.eval()
    return prefix, suffix


def head(net: tv_vgg.VGG) -> nn.Linear:
    """The output layer.

    Parameters
    ----------
    net : torchvision.models.VGG
        A VGG-16 of :func:`build_vgg16`.

    Returns
    -------
    torch.nn.Linear
        ``classifier.6``.
    """
    return net.classifier[-1]


def replace_head(net: tv_vgg.VGG, num_classes: int) -> nn.Linear:
    """Give ``net`` a new, torchvision-initialised output layer with ``num_classes`` outputs.

    Parameters
    ----------
    net : torchvision.models.VGG
        The network (changed in place).
    num_classes : int
        Outputs of the new layer.

    Returns
    -------
    torch.nn.Linear
        The new layer.
    """
    old = head(net)
    new = nn.Linear(old.in_features, num_classes)
    init_like_torchvision(new)
    net.classifier[-1] = new
    return new
