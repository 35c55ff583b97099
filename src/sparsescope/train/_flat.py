"""The MLP fast path: every parameter in one flat buffer, biases folded into the weights.

At batch 60 a step of the 784-32-32-10 MLP is about 6.5 MFLOP, so the time
goes to the two layer-1 products and to the fixed cost of every torch call.
This layout cuts the calls per step to about 18:

* Layer ``l`` is one ``(out, in + 1)`` view of a flat float32 buffer whose
  last column is the bias, and every activation buffer ``(B, in + 1)`` ends
  in a column of ones.  One ``mm`` then gives a layer's pre-activations, and
  one ``mm`` gives its weight AND bias gradient.
* Gradients live in one flat buffer of the same layout, so masking them is
  one multiply, and the fused Adam kernel updates one tensor.
* The cross-entropy gradient ``(softmax - onehot) / B`` is two calls:
  ``softmax``, then ``add`` with ``alpha = 1/B`` onto a per-epoch table of
  ``-onehot / B`` rows in shuffled order.
* Every intermediate has a preallocated buffer (``out=``).

Column compaction: when the layer-1 mask keeps few of the input columns
(late lottery rounds), the unused columns of the data are dropped once per
fit (they only ever meet pruned weights, whose contribution is exactly 0),
so both layer-1 products shrink with them.  The arithmetic is the same sums
without terms that are exactly zero, i.e. the same values up to float
summation order.

Pruned weights stay exactly 0: they start at 0, their gradient is masked
before each step, so their Adam moments stay 0 and so does their update.
"""

from __future__ import annotations

import torch

# Use the compacted data when it keeps at most this fraction of layer 1's input
# columns: below it the copy (about 0.2 ms per kept column of 60k images) costs
# less than the smaller layer-1 products save over 3 epochs (bench/bench_train.py).
COMPACT_BELOW = 0.7


def aligned(n: int) -> int:
    """``n`` floats rounded up to a whole number of 64-byte lines."""
    return -(-n // 16) * 16


class FlatMLP:
    """The parameters, gradients and mask of K masked MLPs of one architecture in three flat float32 buffers.

    ``sizes``: layer widths, input first.  ``ws[l]`` ``(K, out, in)``,
    ``bs[l]`` ``(K, out)``, ``ms[l]`` a float 0/1 ``(K, out, in)`` or
    ``None`` (dense), the weights already multiplied by their mask.
    ``cols``: the layer-1 input columns kept (``None``: all).  ``w[l]`` /
    ``g[l]`` are the ``(K, out, in_kept + 1)`` views of layer ``l`` (last
    column: bias); layer by layer the K tickets lie one after another, each
    block padded to 64 bytes, so when layer 1's block needs no padding
    ``w[0]`` is every ticket's layer 1 as one ``(K * out, in_kept + 1)``
    matrix (the batched trainer's wide product).  K = 1 is the single path.
    """

    def __init__(self, sizes, ws, bs, ms, cols: torch.Tensor | None = None) -> None:
        self.sizes, self.cols, self.k = tuple(sizes), cols, ws[0].shape[0]
        ins = [sizes[0] if cols is None else len(cols), *sizes[1:-1]]
        self.shapes = [(o, i + 1) for o, i in zip(sizes[1:], ins)]
        # every (layer, ticket) block starts on a 64-byte boundary: MKL's rounding of a small
        # product depends on where its output sits, so a ticket's blocks must sit alike
        # whether it is trained alone or among others
        self.strides = [aligned(o * i) for o, i in self.shapes]
        total = self.k * sum(self.strides)
        self.flat, self.grad = torch.zeros(total), torch.zeros(total)
        self.mask = None if all(m is None for m in ms) else torch.ones(total)
        self.w, self.g, offset = [], [], 0
        for l, ((o, i), step) in enumerate(zip(self.shapes, self.strides)):
            view = lambda t: t.as_strided((self.k, o, i), (step, i, 1), offset)  # noqa: E731
            w = view(self.flat)
            self.g.append(view(self.grad))
            keep = (lambda t: t) if l > 0 or cols is None else (lambda t: t.index_select(2, cols))
            w[:, :, :-1] = keep(ws[l])
            w[:, :, -1] = bs[l]
            if ms[l] is not None:
                view(self.mask)[:, :, :-1] = keep(ms[l])
            self.w.append(w)
            offset += self.k * step

    def adam_views(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(parameters, gradients) as one contiguous tensor per (layer, ticket), for the fused Adam kernel.

        The kernel splits each tensor into vector blocks and a scalar tail; giving it
        each ticket's layer as its own tensor makes a ticket's update the same bits
        whatever K is, so a batched ticket equals the ticket trained alone.
        """
        return ([w[k] for w in self.w for k in range(self.k)], [g[k] for g in self.g for k in range(self.k)])

    def collect(self, names, k: int = 0) -> dict[str, torch.Tensor]:
        """Ticket ``k``'s ``{name.weight (out, in), name.bias (out,)}``: new tensors, dropped columns restored as 0."""
        out = {}
        for l, (n, w) in enumerate(zip(names, self.w)):
            weight = w[k, :, :-1]
            if l == 0 and self.cols is not None:
                full = torch.zeros(w.shape[1], self.sizes[0])
                full.index_copy_(1, self.cols, weight)
                weight = full
            out[f"{n}.weight"] = weight.clone(memory_format=torch.contiguous_format)
            out[f"{n}.bias"] = w[k, :, -1].clone()
        return out


def kept_columns(m0: torch.Tensor | None, n_in: int) -> torch.Tensor | None:
    """The layer-1 input columns worth compacting to (``None``: keep all).

    ``m0`` is layer 1's float mask ``(..., out, in)`` (``None``: dense; with a
    leading ticket axis, the columns any ticket uses).  Columns with no
    surviving weight are dropped when at most ``COMPACT_BELOW`` of them remain.
    """
    if m0 is None:
        return None
    used = torch.nonzero(m0.reshape(-1, n_in).any(0)).flatten()
    return used if len(used) <= COMPACT_BELOW * n_in else None


class Buffers:
    """Preallocated per-step tensors for a batch of ``b`` rows (views of the full-batch ones for a short last batch).

    ``a[l]`` ``(b, in_l + 1)``: what layer ``l`` consumes, last column ones;
    ``h[l]`` its first ``in_l`` columns; ``z[l]`` ``(b, out_l)`` scratch for
    pre-activations and back-propagated gradients; ``g[l]`` ``(b, out_l)``
    the loss gradient at layer ``l``'s output; ``sm`` ``(b, classes)`` softmax.
    """

    def __init__(self, net: FlatMLP, b: int, full: Buffers | None = None) -> None:
        if full is None:
            self.a = [torch.ones(b, i) for (_, i) in net.shapes]
            self.z = [torch.empty(b, o) for (o, _) in net.shapes]
            self.g = [torch.empty(b, o) for (o, _) in net.shapes]
            self.sm = torch.empty(b, net.shapes[-1][0])
            self.logits = torch.empty(b, net.shapes[-1][0])
        else:
            self.a = [t[:b] for t in full.a]
            self.z = [t[:b] for t in full.z]
            self.g = [t[:b] for t in full.g]
            self.sm = full.sm[:b]
            self.logits = torch.empty(b, net.shapes[-1][0])
        self.h = [a[:, :-1] for a in self.a]
        self.gt = [g.t() for g in self.g]


def train_epoch(net: FlatMLP, adam, x: torch.Tensor, perm: torch.Tensor, noh: torch.Tensor,
                logits: torch.Tensor, batch: int, step: int, events: set[int], on_event) -> int:
    """One epoch of mini-batch steps over ``x[perm]`` (``x`` ``(n, in_kept)`` float32); returns the step count after it.

    ``noh`` ``(n, classes)``: ``-onehot / b`` of each shuffled sample, ``b``
    its batch's size; ``logits`` ``(n, classes)`` receives the training
    logits in shuffled order.  ``step`` counts steps done before this epoch;
    ``on_event(step)`` is called after every step whose number is in ``events``.
    ``adam.step()`` updates ``net.flat`` from ``net.grad`` (``_fit._FusedAdam``).
    """
    n = len(perm)
    full = Buffers(net, min(batch, n))
    short = Buffers(net, n % batch, full) if n % batch else full
    mm, relu, softmax, add, isel = torch.mm, torch.clamp_min, torch.softmax, torch.add, torch.index_select
    relu_back = torch.ops.aten.threshold_backward.grad_input
    last = len(net.w) - 1
    wt = [w[0].t() for w in net.w]  # forward operand (in + 1, out)
    wi = [w[0, :, :-1] for w in net.w]  # backward operand (out, in): the bias does not propagate
    gw, grad, mask = [g[0] for g in net.g], net.grad, net.mask
    for s in range(0, n, batch):
        e = min(s + batch, n)
        buf = full if e - s == batch else short
        a, h, z, g, gt = buf.a, buf.h, buf.z, buf.g, buf.gt
        isel(x, 0, perm[s:e], out=h[0])
        for l in range(last):
            mm(a[l], wt[l], out=z[l])
            relu(z[l], 0, out=h[l + 1])
        # into an aligned scratch (MKL's rounding depends on where the output sits), then kept
        mm(a[last], wt[last], out=buf.logits)
        logits[s:e] = buf.logits
        softmax(buf.logits, 1, out=buf.sm)
        add(noh[s:e], buf.sm, alpha=1.0 / (e - s), out=g[last])
        for l in range(last, 0, -1):
            mm(gt[l], a[l], out=gw[l])
            mm(g[l], wi[l], out=z[l - 1])
            relu_back(z[l - 1], h[l], 0, grad_input=g[l - 1])
        mm(gt[0], a[0], out=gw[0])
        if mask is not None:
            grad.mul_(mask)
        adam.step()
        step += 1
        if step in events:
            on_event(step)
    return step


def neg_onehot_table(y: torch.Tensor, classes: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(onehot (n, classes), scale (n, 1))``: the per-epoch table is ``onehot[perm] * scale``,
    ``scale = -1/b`` with ``b`` the size of the sample's batch (the last batch may be short)."""
    n = len(y)
    onehot = torch.zeros(n, classes)
    onehot.scatter_(1, y.view(-1, 1), 1.0)
    scale = torch.full((n, 1), -1.0 / batch)
    if n % batch:
        scale[n - n % batch :] = -1.0 / (n % batch)
    return onehot, scale
