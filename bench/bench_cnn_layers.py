"""Where one training step of the study's CNN spends its time, per layer and product.

One thread, batch 60 (configs/mnist-cnn.toml), each piece timed alone on a
fixed batch (best thread CPU time and median wall of --reps calls), beside
its GFLOP/s and the 512x512 matmul rate that sets bench_cnn.py's floor:

* direct: the default path (train/_directconv.py): data gather, each
  convolution's forward, weight gradient (+ bias) and input gradient,
  ReLU backward, the linear layer, the loss gradient, Adam, and one whole step;
* torch: the same convolutions through torch's own kernels (what autograd
  runs), forward and convolution_backward, in torch's default (mkldnn) and
  channels_last formats and with mkldnn off.

    python3 bench/bench_cnn_layers.py [--reps 200] [--batch 60] [--no-torch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "mnist-cnn.toml"


def timed(fn, reps: int) -> tuple[float, float]:
    """(best thread CPU ms, median wall ms) of ``fn()``."""
    for _ in range(5):
        fn()
    walls, cpus = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.thread_time() - c)
    return 1e3 * min(cpus), 1e3 * statistics.median(walls)


def row(label: str, t: tuple[float, float], flops: float | None = None) -> None:
    rate = f"{flops / t[0] / 1e6:6.1f} GFLOP/s" if flops else " " * 14
    print(f"  {label:34s} {t[0]:7.3f} ms CPU  {t[1]:7.3f} ms wall  {rate}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=60)
    ap.add_argument("--no-torch", action="store_true", help="skip torch's own kernels")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from sparsescope import load_config
    from sparsescope.models import init_params
    from sparsescope.train import TrainConfig
    from sparsescope.train._directconv import DirectStepper
    from sparsescope.train._fit import _FusedAdam

    spec = load_config(CONFIG).model
    n, reps = args.batch, args.reps
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    mm = timed(lambda: a @ b, 30)
    print(f"load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}; 512x512 matmul {2 * 512**3 / mm[0] / 1e6:.1f} GFLOP/s "
          f"(best CPU), batch {n}, one thread")
    params = {k: v.clone() for k, v in init_params(spec, 0).items()}
    masks = {k: None for k in spec.layer_names}
    grads = {k: torch.zeros_like(v) for k, v in params.items()}
    st = DirectStepper(spec, params, masks)
    x = torch.rand(60000, *spec.input_shape)
    idx = torch.randperm(60000)[:n]
    y = torch.randint(0, 10, (n,))
    onehot = F.one_hot(y, 10).float()
    xb = x.index_select(0, idx)
    step = timed(lambda: st.step(x.index_select(0, idx), onehot, grads), reps)
    convs = [op[1] for op in st.ops if op[0] == "conv"]
    _, vals = st.forward(xb)
    print("direct path (train/_directconv.py):")
    nb = vals[0].shape[-1]
    row("gather batch + to batch-innermost", timed(lambda: vals[0][..., :n].copy_(
        x.index_select(0, idx).permute(1, 2, 3, 0)), reps))
    total_flops = 0.0
    outs = vals[1:4]
    gs = [torch.rand_like(o) for o in outs]
    for c, out, g in zip(convs, outs, gs):
        macs = n * c.o * c.c * c.k * c.k * c.oh * c.ow
        row(f"{c.name} forward", timed(lambda: c.forward(n, out), reps), 2 * macs)
        d = c._buf(n)
        gw, gb = grads[f"{c.name}.weight"], grads[f"{c.name}.bias"]
        row(f"{c.name} ReLU backward", timed(lambda: torch.ops.aten.threshold_backward.grad_input(
            g, out, 0, grad_input=g), reps))
        x_ = d["x"]
        row(f"{c.name} weight + bias gradient", timed(lambda: c._wgrad(
            x_.data_ptr(), x_.stride(0), x_.stride(1), g.data_ptr(), g.stride(0), g.stride(1), gw.data_ptr(), gb.data_ptr(),
            c.scratch.data_ptr(), c.c, c.o, c.k, c.s, c.oh, c.ow, nb), reps), 2 * macs)
        if not c.first:
            dx = d["dx"]

            def igrad():
                dx.zero_()
                c._igrad(g.data_ptr(), g.stride(0), g.stride(1), c.wt.data_ptr(), dx.data_ptr(), dx.stride(0), dx.stride(1),
                         c.c, c.o, c.k, c.s, c.oh, c.ow, nb)
            row(f"{c.name} input gradient (+ zeroing)", timed(igrad, reps), 2 * macs)
        row(f"{c.name} backward as the step runs it", timed(lambda: c.backward(n, g, out, gw, gb), reps),
            (2 if c.first else 4) * macs)
        total_flops += 6 * macs
    feats = vals[4]
    w, bias = params["out.weight"], params["out.bias"]
    lmacs = n * w.numel()
    gl = torch.rand(10, nb)
    row("out forward (addmm)", timed(lambda: torch.addmm(bias.unsqueeze(1), w, feats), reps), 2 * lmacs)
    row("out weight gradient (mm)", timed(lambda: torch.mm(gl, feats.t(), out=grads["out.weight"]), reps), 2 * lmacs)
    row("out input gradient (mm)", timed(lambda: torch.mm(w.t(), gl), reps), 2 * lmacs)
    logits = torch.randn(n, 10)
    row("loss gradient (softmax - onehot)", timed(lambda: torch.log_softmax(logits, 1).exp_().sub_(onehot).mul_(1 / n), reps))
    plist = list(params.values())
    adam = _FusedAdam(plist, [grads[k] for k in params], TrainConfig())
    row("fused Adam (29,778 parameters)", timed(adam.step, reps))
    row("whole step (incl. gather)", step, total_flops + 6 * lmacs)
    floor_ms = 6 * spec.macs_per_sample() * n / (2 * 512**3 / mm[0] / 1e3) / 1e3
    print(f"  compute floor per step {floor_ms:.3f} ms CPU -> step / floor = {step[0] / floor_ms:.2f}x")
    if args.no_torch:
        return
    print("torch's kernels (what autograd runs), per convolution, forward | convolution_backward (input+weight+bias):")
    import warnings

    warnings.filterwarnings("ignore", message=".*TF32.*")  # torch's mkldnn.flags() warns about Intel GPUs
    for fmt, mk in (("default", True), ("channels_last", True), ("default, mkldnn off", False)):
        with torch.backends.mkldnn.flags(enabled=mk):
            tot = 0.0
            for c in convs:
                xx = torch.randn(n, c.c, c.h, c.wd)
                ww = params[f"{c.name}.weight"]
                if fmt == "channels_last":
                    xx, ww = xx.contiguous(memory_format=torch.channels_last), ww.contiguous(memory_format=torch.channels_last)
                yy = F.conv2d(xx, ww, params[f"{c.name}.bias"])
                go = torch.randn_like(yy)
                macs = n * c.o * c.c * c.k * c.k * c.oh * c.ow
                f = timed(lambda: F.conv2d(xx, ww, params[f"{c.name}.bias"]), reps)
                bw = timed(lambda: torch.ops.aten.convolution_backward(go, xx, ww, [c.o], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                                                                       [not c.first, True, True]), reps)
                nprod = 2 if c.first else 3
                print(f"  {fmt:20s} {c.name}: forward {f[0]:.3f} ms ({2 * macs / f[0] / 1e6:.1f} GFLOP/s) | backward {bw[0]:.3f} ms "
                      f"({2 * (nprod - 1) * macs / bw[0] / 1e6:.1f} GFLOP/s)")
                tot += f[0] + bw[0]
            print(f"  {fmt:20s} three convolutions: {tot:.3f} ms CPU per step")


if __name__ == "__main__":
    main()
