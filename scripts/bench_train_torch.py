#!/usr/bin/env python3
"""PyTorch reference for `ensemble bench --train CASE`: one training step as DEM (iDEM) and
gfn-diffusion (trajectory balance) compute it, with the EGNN of scripts/bench_egnn_torch.py
(the same function as the product's network) in float32, on `--threads` threads.

iDEM step (DEM's `dem_module.training_step` + `estimate_grad_Rt`): draw `batch` points from a
buffer, t ~ U(0, 1), x_t = x_0 + sqrt(h(t)) eps (mean-free noise), the Monte-Carlo score
S_K = grad_x logsumexp_k(-u(x_t + sqrt(h(t)) eps_k)) by autograd through K energy evaluations
per point, per-particle norm clip 20, loss mean((s_theta(x_t, t) - S_K)^2), backward, Adam.

TB step (gfn-diffusion's `fwd_tb`): K steps of the PIS forward policy from x_0 = 0 with the
drift f_theta(x_k, t_k) under autograd (states detached), log p_F and the pinned-Brownian
log p_B accumulated on the way, u(x_K), loss mean((log Z + log p_F - log p_B + u)^2),
backward, Adam.

Prints one JSON line: {"case", "title", "result": {"ms", "min_ms", "peak_rss_mb", "threads", "steps"}}.
usage: .venv-torch/bin/python scripts/bench_train_torch.py --case dw4-idem [--threads 2] [--steps 5]
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_egnn_torch import EGNNDynamics  # noqa: E402

# name: (n, d, energy, method, hidden, layers, batch, K or steps, sigma_min, sigma_max)
CASES = {
    "dw4-idem": (4, 2, "dw4", "idem", 128, 3, 512, 1000, 1e-5, 3.0),
    "lj13-idem": (13, 3, "lj13", "idem", 128, 5, 512, 1000, 0.01, 2.0),
    "dw4-tb": (4, 2, "dw4", "tb", 64, 3, 300, 100, None, None),
    "lj13-tb": (13, 3, "lj13", "tb", 64, 3, 64, 50, None, None),
}


def pair_distances(x):
    """x (m, n, d) -> distances of the i<j pairs (m, n(n-1)/2), as DEM's energies take them."""
    n = x.shape[1]
    i, j = torch.triu_indices(n, n, 1)
    return (x[:, i] - x[:, j]).norm(dim=-1)


def dw4_energy(x):
    """DW-4 (a=0, b=-4, c=0.9, d0=4), kT = 1."""
    s = pair_distances(x) - 4.0
    return (-4.0 * s ** 2 + 0.9 * s ** 4).sum(-1)


def lj13_energy(x):
    """The iDEM LJ-13 energy: ordered pairs (twice the i<j sum) of r^-12 - 2 r^-6, plus the
    harmonic centre-of-mass term."""
    r = pair_distances(x)
    lj = 2 * (r.pow(-12) - 2 * r.pow(-6)).sum(-1)
    return lj + 0.5 * (x - x.mean(1, keepdim=True)).pow(2).sum((-1, -2))


def mean_free_noise(*shape):
    e = torch.randn(*shape)
    return e - e.mean(-2, keepdim=True)


def idem_step(model, opt, energy, buffer, n, d, batch, k, smin, smax):
    x0 = buffer[torch.randint(0, buffer.shape[0], (batch,))]
    t = torch.rand(batch)
    sigma2 = (smin ** (1 - t) * smax ** t) ** 2 - smin ** 2
    s = sigma2.sqrt().view(batch, 1, 1)
    xt = x0 + s * mean_free_noise(batch, n, d)
    xt.requires_grad_(True)
    y = xt.unsqueeze(1) + s.unsqueeze(1) * mean_free_noise(batch, k, n, d)
    logits = -energy(y.reshape(batch * k, n, d)).view(batch, k)
    (target,) = torch.autograd.grad(torch.logsumexp(logits, 1).sum(), xt)
    norm = target.norm(dim=-1, keepdim=True)
    target = torch.where(norm > 20, target * 20 / norm, target).detach()
    opt.zero_grad(set_to_none=True)
    loss = ((model(t, xt.detach()) - target) ** 2).mean()
    loss.backward()
    opt.step()


def tb_step(model, opt, log_z, energy, n, d, batch, steps, sigma=2.0):
    dt = 1.0 / steps
    var = sigma * sigma * dt
    dim = (n - 1) * d
    x = torch.zeros(batch, n, d)
    log_pf = torch.zeros(batch)
    log_pb = torch.zeros(batch)
    for k in range(steps):
        f = model(torch.full((batch,), k * dt), x) if k > 0 else torch.zeros(batch, n, d)
        nxt = x + f.detach() * dt + math.sqrt(var) * mean_free_noise(batch, n, d)
        r = nxt - x - f * dt
        log_pf = log_pf - (r ** 2).sum((1, 2)) / (2 * var) - 0.5 * dim * math.log(2 * math.pi * var)
        if k > 0:
            ratio = k / (k + 1)
            vb = var * ratio
            rb = x - ratio * nxt
            log_pb = log_pb - (rb ** 2).sum((1, 2)) / (2 * vb) - 0.5 * dim * math.log(2 * math.pi * vb)
        x = nxt
    u = energy(x)
    opt.zero_grad(set_to_none=True)
    loss = ((log_z + log_pf - log_pb + u) ** 2).mean()
    loss.backward()
    opt.step()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case", required=True, choices=sorted(CASES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    n, d, name, method, hidden, layers, batch, size, smin, smax = CASES[a.case]
    energy = dw4_energy if name == "dw4" else lj13_energy
    model = EGNNDynamics(n, d, hidden=hidden, layers=layers)
    if method == "idem":
        buffer = (smax * mean_free_noise(1024, n, d))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = lambda: idem_step(model, opt, energy, buffer, n, d, batch, size, smin, smax)  # noqa: E731
    else:
        log_z = torch.zeros((), requires_grad=True)
        opt = torch.optim.Adam([{"params": model.parameters(), "lr": 1e-3}, {"params": [log_z], "lr": 0.1}])
        step = lambda: tb_step(model, opt, log_z, energy, n, d, batch, size)  # noqa: E731
    step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    title = f"{a.case} (PyTorch {torch.__version__}, float32)"
    print(json.dumps({"case": a.case, "title": title, "result": {
        "ms": times[len(times) // 2], "min_ms": times[0], "peak_rss_mb": rss,
        "threads": a.threads, "steps": a.steps}}, sort_keys=True))


if __name__ == "__main__":
    main()
