"""Exact LRP for torchvision VGG networks in one explicit backward sweep, without hooks.

zennit computes LRP as a modified gradient: per call it registers hooks on every layer, and in
the backward pass each hooked layer re-runs its forward with modified weights, built anew each
time. For the plain VGG topology (conv, [batch norm], ReLU, max-pool, adaptive average pool,
linear, dropout) the same numbers come out of one forward pass and one hand-written backward
sweep in which

* the modified weights (``W+``, ``W-``, the gamma-rule weights, BatchNorm merged into the
  convolutions exactly as zennit's ``SequentialMergeBatchNorm`` does) are built once, when the
  :class:`FastLRP` is made;
* terms that are exactly zero are skipped: every layer after the first sees the output of a
  ReLU (or of a pooling of one), so its input is non-negative and the rules' negative-input
  terms (``x- = min(x, 0) = 0``) vanish; the flat and z-box rules' denominators depend only on
  the input shape and are cached per shape;
* stacked weights turn two transposed convolutions into one;
* nothing is cloned that is not changed, and the sweep runs under ``torch.inference_mode``.

zennit stays the reference: ``tests/model/test_lrp.py`` checks that every composite served here matches
zennit's ``Gradient`` attributor to 1e-5 relative. A network or composite this module does not
serve raises :class:`Unsupported`; :mod:`model.explain` then falls back to zennit.

Examples
--------
>>> import torch
>>> from model.architecture import build_vgg16
>>> net = build_vgg16(2, width=0.0625).eval()
>>> lrp = FastLRP(net, "epsilon_plus_flat")
>>> logits, relevance = lrp(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))
>>> relevance.shape
torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from zennit.torchvision import VGGCanonizer

from .frozen import frozen_eval, preserved

__all__ = ["SERVED_COMPOSITES", "Unsupported", "FastLRP", "stabilize"]

# zennit registry name -> (rule of the first linear layer, rule of the other convolutions)
_PLANS: dict[str, tuple[str | None, str]] = {
    "epsilon_plus_flat": ("flat", "zplus"),
    "epsilon_plus": (None, "zplus"),
    "epsilon_alpha2_beta1": (None, "alpha2_beta1"),
    "epsilon_alpha2_beta1_flat": ("flat", "alpha2_beta1"),
    "epsilon_gamma_box": ("zbox", "gamma"),
}
SERVED_COMPOSITES: tuple[str, ...] = tuple(_PLANS)


class Unsupported(ValueError):
    """The network or composite is outside what the fast path reproduces exactly."""


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """zennit's stabiliser, ``z + epsilon * sign(z)`` with sign(0) = +1 (same floating-point steps).

    Parameters
    ----------
    z : torch.Tensor
        The denominators.
    epsilon : float
        The stabiliser.

    Returns
    -------
    torch.Tensor
        A new tensor.
    """
    return z + ((z == 0.0).to(z) + z.sign()) * epsilon


def _stabilize_(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """In-place :func:`stabilize`, bitwise the same: ``z + (+-epsilon)`` (``z - e == z + (-e)`` in IEEE)."""
    return z.add_(torch.where(z >= 0.0, z.new_tensor(epsilon), z.new_tensor(-epsilon)))


# --------------------------------------------------------------------------- linear operators


class _Conv:
    """A 2-d convolution's forward and input-adjoint with fixed geometry."""

    def __init__(self, module: nn.Conv2d) -> None:
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise Unsupported(f"convolution with padding {module.padding!r}/{module.padding_mode}")
        self.args = (module.stride, module.padding, module.dilation, module.groups)

    def fwd(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, w, b, *self.args)

    def bwd(self, g: torch.Tensor, w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return torch.nn.grad.conv2d_input(shape, w, g, *self.args)


class _Dense:
    def fwd(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, b)

    def bwd(self, g: torch.Tensor, w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return g @ w


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


# --------------------------------------------------------------------------- layer steps


class _Step:
    """One layer: ``forward`` returns (output, what backward needs); ``backward`` maps relevance down."""

    nonneg_out: bool | None = None  # None: output sign as input's

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        raise NotImplementedError

    def backward(self, r: torch.Tensor, saved: tuple) -> torch.Tensor:
        raise NotImplementedError


class _Identity(_Step):
    def forward(self, x):
        return x, ()

    def backward(self, r, saved):
        return r


class _ReLU(_Step):
    nonneg_out = True

    def __init__(self, inplace: bool) -> None:
        self.inplace = inplace  # only when no step keeps the pre-activation for its backward

    def forward(self, x):
        return (torch.relu_(x) if self.inplace else torch.relu(x)), ()

    def backward(self, r, saved):  # zennit's Pass rule: relevance goes through unchanged
        return r


class _Flatten(_Step):
    def forward(self, x):
        return torch.flatten(x, 1), (x.shape,)

    def backward(self, r, saved):
        return r.reshape(saved[0])


class _MaxPool(_Step):
    """No rule in zennit's composites: the plain gradient (routed to each window's maximum)."""

    def __init__(self, module: nn.MaxPool2d) -> None:
        self.args = (module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode)

    def forward(self, x):
        y, idx = F.max_pool2d(x, *self.args, return_indices=True)
        return y, (x.shape, idx)

    def backward(self, r, saved):
        shape, idx = saved
        out = r.new_zeros(shape[0], shape[1], shape[2] * shape[3])
        out.scatter_add_(2, idx.flatten(2), r.flatten(2))
        return out.view(shape)


class _AdaptiveAvgPool(_Step):
    """zennit's Norm rule: ``x * pool^T(R / stab(pool(x)))``."""

    def __init__(self, module: nn.AdaptiveAvgPool2d, stabilizer: float) -> None:
        self.size = module.output_size
        self.stabilizer = stabilizer

    def forward(self, x):
        y = F.adaptive_avg_pool2d(x, self.size)
        return y, (x, y)

    def backward(self, r, saved):
        x, y = saved
        g = r / stabilize(y, self.stabilizer)
        return x * torch.ops.aten._adaptive_avg_pool2d_backward(g, x)


class _BatchNorm(_Step):
    """A batch norm left behind by the merge (identity in zennit >= 1.0, ``x/sqrt(1+eps)`` before)."""

    def __init__(self, state: dict[str, torch.Tensor | float]) -> None:
        self.state = state

    def forward(self, x):
        s = self.state
        return F.batch_norm(x, s["running_mean"], s["running_var"], s["weight"], s["bias"],
                            False, 0.0, float(s["eps"])), ()

    def backward(self, r, saved):  # zennit's Pass rule
        return r


class _Linear(_Step):
    """A convolution or dense layer with one LRP rule; weights prepared once."""

    nonneg_out = False

    def __init__(self, op, weight, bias, rule: str, nonneg_in: bool, *, epsilon: float,
                 stabilizer: float, gamma: float, low=None, high=None) -> None:
        self.op, self.w, self.b, self.rule, self.nonneg = op, weight, bias, rule, nonneg_in
        self.epsilon, self.stabilizer, self.gamma = epsilon, stabilizer, gamma
        self._shape_cache: dict[tuple, torch.Tensor] = {}
        w, b = weight, bias
        if rule == "zplus" or rule == "alpha2_beta1":
            self.wp, self.bp, self.wn, self.bn = _pos(w), _pos(b), _neg(w), _neg(b)
            if rule == "alpha2_beta1" and nonneg_in:
                self.w_stack = torch.cat([self.wp, self.wn])
        elif rule == "gamma":
            self.wa, self.ba = w + gamma * w.clamp(min=0), None if b is None else b + gamma * b.clamp(min=0)
            self.wb, self.bb = w + gamma * w.clamp(max=0), None if b is None else b + gamma * b.clamp(max=0)
            self.w_stack = torch.cat([self.wa, self.wb])
        elif rule == "flat":
            if not isinstance(op, _Conv):
                raise Unsupported("the flat rule is served for a first convolution only")
            self.w_ones = torch.ones_like(w[:1, :1])  # every input channel gets the same sum
            self.w_ones_full = torch.ones_like(w)
        elif rule == "zbox":
            if not isinstance(op, _Conv):
                raise Unsupported("the z-box rule is served for a first convolution only")
            c = w.shape[1]
            low, high = (torch.as_tensor(v, dtype=w.dtype, device=w.device) for v in (low, high))
            if low.numel() not in (1, c) or high.numel() not in (1, c):
                raise Unsupported("z-box bounds must be scalars or one value per input channel")
            self.low = low.reshape(-1).expand(c).reshape(1, c, 1, 1)
            self.high = high.reshape(-1).expand(c).reshape(1, c, 1, 1)
            self.wp, self.bp, self.wn, self.bn = _pos(w), _pos(b), _neg(w), _neg(b)
            # low * W+^T g + high * W-^T g == (W+ * low + W- * high)^T g for per-channel bounds
            self.w_stack = torch.cat([w, self.wp * self.low + self.wn * self.high], dim=1)
        elif rule != "epsilon":
            raise Unsupported(f"rule {rule}")

    @property
    def keeps_output(self) -> bool:
        return self.rule in ("epsilon", "gamma", "zbox")

    def forward(self, x):
        z = self.op.fwd(x, self.w, self.b)
        return z, (x, z if self.keeps_output else None)

    # the rules, in zennit's definitions (zennit/rules.py); see the module docstring for the shortcuts
    def backward(self, r, saved):
        x, z = saved
        rule, op, shape = self.rule, self.op, x.shape
        if rule == "epsilon":
            g = r.div_(_stabilize_(z, self.epsilon))
            return op.bwd(g, self.w, shape).mul_(x)
        if rule == "flat":
            key = tuple(shape[1:])
            if key not in self._shape_cache:
                ones = torch.ones((1, *shape[1:]), dtype=x.dtype, device=x.device)
                self._shape_cache[key] = _stabilize_(op.fwd(ones, self.w_ones_full, None), self.stabilizer)
            g = r / self._shape_cache[key]
            summed = op.bwd(g.sum(1, keepdim=True), self.w_ones, torch.Size((shape[0], 1, *shape[2:])))
            return summed.expand(shape)
        if rule == "zbox":
            key = tuple(shape[1:])
            if key not in self._shape_cache:
                full = (1, *shape[1:])
                self._shape_cache[key] = (op.fwd(self.low.expand(full), self.wp, self.bp)
                                          + op.fwd(self.high.expand(full), self.wn, self.bn))
            g = r.div_(_stabilize_(z - self._shape_cache[key], self.stabilizer))
            both = op.bwd(g, self.w_stack, torch.Size((shape[0], 2 * shape[1], *shape[2:])))
            c = shape[1]
            return both[:, :c].mul_(x).sub_(both[:, c:])
        if self.nonneg:
            return self._backward_nonneg(r, x, z)
        return self._backward_signed(r, x, z)

    def _backward_nonneg(self, r, x, z):
        """Input x >= 0: the negative-input terms are exactly zero and are skipped."""
        op, shape, eps = self.op, x.shape, self.stabilizer
        if self.rule == "zplus":
            # W+ x + b+ >= 0, so zennit's stabiliser adds exactly +eps
            g = r.div_(op.fwd(x, self.wp, self.bp).add_(eps))
            return op.bwd(g, self.wp, shape).mul_(x)
        if self.rule == "alpha2_beta1":
            ga = (2.0 * r).div_(op.fwd(x, self.wp, self.bp).add_(eps))  # >= 0: +eps exactly
            gb = r.div_(_stabilize_(op.fwd(x, self.wn, self.bn), eps)).neg_()
            return op.bwd(torch.cat([ga, gb], 1), self.w_stack, shape).mul_(x)
        # gamma
        gp = ((z > 0.0) * r).div_(_stabilize_(op.fwd(x, self.wa, self.ba), eps))
        gn = ((z < 0.0) * r).div_(_stabilize_(op.fwd(x, self.wb, self.bb), eps))
        return op.bwd(torch.cat([gp, gn], 1), self.w_stack, shape).mul_(x)

    def _backward_signed(self, r, x, z):
        """General input: zennit's four-term forms."""
        op, shape, eps = self.op, x.shape, self.stabilizer
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        if self.rule == "zplus":
            g = r / stabilize(op.fwd(xp, self.wp, self.bp) + op.fwd(xn, self.wn, None), eps)
            return xp * op.bwd(g, self.wp, shape) + xn * op.bwd(g, self.wn, shape)
        if self.rule == "alpha2_beta1":
            ga = r / stabilize(op.fwd(xp, self.wp, self.bp) + op.fwd(xn, self.wn, None), eps)
            gb = r / stabilize(op.fwd(xp, self.wn, self.bn) + op.fwd(xn, self.wp, None), eps)
            pos = xp * op.bwd(ga, self.wp, shape) + xn * op.bwd(ga, self.wn, shape)
            neg = xp * op.bwd(gb, self.wn, shape) + xn * op.bwd(gb, self.wp, shape)
            return 2.0 * pos - neg
        gp = (z > 0.0) * r / stabilize(op.fwd(xp, self.wa, self.ba) + op.fwd(xn, self.wb, None), eps)
        gn = (z < 0.0) * r / stabilize(op.fwd(xp, self.wb, self.bb) + op.fwd(xn, self.wa, None), eps)
        return (xp * op.bwd(gp, self.wa, shape) + xn * op.bwd(gp, self.wb, shape)
                + xp * op.bwd(gn, self.wb, shape) + xn * op.bwd(gn, self.wa, shape))


# --------------------------------------------------------------------------- the explainer


def _vgg_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    features, avgpool, classifier = (getattr(net, k, None) for k in ("features", "avgpool", "classifier"))
    if not all(isinstance(m, nn.Module) for m in (features, avgpool, classifier)):
        raise Unsupported(f"{type(net).__name__} is not a VGG-style network (features, avgpool, classifier)")
    if not isinstance(features, nn.Sequential) or not isinstance(classifier, nn.Sequential):
        raise Unsupported("VGG features and classifier must be nn.Sequential")
    return ([(f"features.{i}", m) for i, m in enumerate(features)]
            + [("avgpool", avgpool), ("flatten", nn.Flatten(1))]
            + [(f"classifier.{i}", m) for i, m in enumerate(classifier)])


def _merged_parameters(net: nn.Module) -> dict[str, dict[str, torch.Tensor | float]]:
    """Conv and batch-norm parameters after zennit's own BatchNorm merge (model restored afterwards)."""
    state: dict[str, dict[str, torch.Tensor | float]] = {}
    with torch.no_grad(), preserved(net):
        applied = VGGCanonizer().apply(net)
        try:
            for name, m in net.named_modules():
                if isinstance(m, nn.Conv2d):
                    state[name] = {"weight": m.weight.detach().clone(),
                                   "bias": None if m.bias is None else m.bias.detach().clone()}
                elif isinstance(m, nn.BatchNorm2d):
                    state[name] = {k: getattr(m, k).detach().clone()
                                   for k in ("weight", "bias", "running_mean", "running_var")}
                    state[name]["eps"] = float(m.eps)
        finally:
            for canonizer in applied:
                canonizer.remove()
    return state


@dataclass(frozen=True)
class _Fingerprint:
    params: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, net: nn.Module) -> _Fingerprint:
        return cls(tuple((id(p), p._version) for p in net.parameters()))


class FastLRP:
    """LRP of a torchvision-style VGG with one of zennit's composites, weights prepared once.

    Parameters
    ----------
    net
        A VGG (``features``, ``avgpool``, ``classifier``), with or without batch norm. It is read,
        never changed; build a new :class:`FastLRP` after changing its parameters (a changed
        parameter is detected and refused).
    composite
        A zennit registry name from :data:`SERVED_COMPOSITES`.
    low, high
        The lowest / highest model-input values (scalars or per channel), for ``epsilon_gamma_box``.
    epsilon, stabilizer, gamma
        zennit's defaults for these composites.

    Raises
    ------
    Unsupported
        For another composite or a layer this sweep does not reproduce.
    """

    def __init__(self, net: nn.Module, composite: str = "epsilon_plus_flat", *, low=None, high=None,
                 epsilon: float = 1e-6, stabilizer: float = 1e-6, gamma: float = 0.25) -> None:
        if composite not in _PLANS:
            raise Unsupported(f"composite '{composite}' is not served by the fast path")
        first_rule, conv_rule = _PLANS[composite]
        if first_rule == "zbox" and (low is None or high is None):
            raise Unsupported("epsilon_gamma_box needs low and high input bounds")
        self.composite = composite
        self.net = net
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        merged = _merged_parameters(net) if has_bn else {}
        kw = {"epsilon": epsilon, "stabilizer": stabilizer, "gamma": gamma}
        steps: list[_Step] = []
        nonneg, first_done = False, False
        for name, m in _vgg_layers(net):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if isinstance(m, nn.Conv2d):
                    op = _Conv(m)
                    params = merged.get(name) or {"weight": m.weight.detach(),
                                                  "bias": None if m.bias is None else m.bias.detach()}
                    rule = conv_rule
                    if not first_done and first_rule is not None:
                        rule = first_rule  # zennit: the first Linear-type layer (flat) / convolution (zbox)
                else:
                    op, params, rule = _Dense(), {"weight": m.weight.detach(),
                                                  "bias": None if m.bias is None else m.bias.detach()}, "epsilon"
                    if not first_done and first_rule == "flat":
                        raise Unsupported("network starts with a dense layer")
                first_done = True
                steps.append(_Linear(op, params["weight"], params["bias"], rule, nonneg,
                                     low=low, high=high, **kw))
            elif isinstance(m, nn.BatchNorm2d):
                if not isinstance(steps[-1] if steps else None, _Linear):
                    raise Unsupported(f"{name}: batch norm not right after a convolution")
                steps.append(_BatchNorm(merged[name]))
            elif isinstance(m, nn.ReLU):
                before = steps[-1] if steps else None
                # in place only on a fresh tensor that no step keeps (a BN output or unkept conv output)
                steps.append(_ReLU(inplace=isinstance(before, _BatchNorm)
                                   or (isinstance(before, _Linear) and not before.keeps_output)))
            elif isinstance(m, nn.MaxPool2d):
                steps.append(_MaxPool(m))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                steps.append(_AdaptiveAvgPool(m, stabilizer))
            elif isinstance(m, nn.Flatten):
                steps.append(_Flatten())
            elif isinstance(m, (nn.Dropout, nn.Identity)):
                steps.append(_Identity())
            else:
                raise Unsupported(f"{name}: layer {type(m).__name__} is not served by the fast path")
            if steps[-1].nonneg_out is not None:
                nonneg = steps[-1].nonneg_out
        self.steps = steps
        self._fingerprint = _Fingerprint.of(net)
        self._check_forward()

    def _check_forward(self) -> None:
        """The sweep's forward must reproduce the network's logits (else: not a plain VGG forward)."""
        first = next(p for p in self.net.parameters())
        c = next(m for m in self.net.modules() if isinstance(m, nn.Conv2d)).in_channels
        x = torch.randn(2, c, 32, 32, generator=torch.Generator().manual_seed(0)).to(first)
        with frozen_eval(self.net), torch.inference_mode():
            expected = self.net(x)
            got = self.forward(x)[0]
        # float32 error (batch norm folded into the convolutions) scales with the largest logit, not
        # with each one: a logit near 0 must not fail a sweep that is right to 1e-4 of the scale
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        if got.shape != expected.shape or float((got - expected).abs().max()) > 1e-3 * scale + 1e-5:
            raise Unsupported(f"{type(self.net).__name__}'s forward differs from a plain VGG sweep")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple]]:
        saved = []
        for step in self.steps:
            x, keep = step.forward(x)
            saved.append(keep)
        return x, saved

    def __call__(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, K) and relevance (N, C, H, W) of the ``target`` logit (default: the predicted one).

        The output relevance is one-hot(target) * logit, so a conservative map sums to the logit.
        """
        if _Fingerprint.of(self.net) != self._fingerprint:
            raise RuntimeError("the network's parameters changed since this FastLRP was built; build a new one")
        with torch.inference_mode():
            logits, saved = self.forward(x)
            logits = logits.clone()  # the sweep stabilises the last layer's output in place
            if target is None:
                target = logits.argmax(1)
            target = torch.as_tensor(target, device=logits.device).reshape(-1, 1)
            r = torch.zeros_like(logits).scatter_(1, target, logits.gather(1, target))
            for step, keep in zip(reversed(self.steps), reversed(saved)):
                r = step.backward(r, keep)
        return logits, r
