#!/usr/bin/env python3
"""Batched PyTorch Lennard-Jones energy + autograd forces, as the iDEM/DEM code computes them.

Compare with `ensemble bench` on the same machine and thread count:
    .venv-torch/bin/python scripts/bench_lj_torch.py --threads 2 --batch 1024
(.venv-torch: python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0)

The energy is the benchmark's: sum over ordered pairs i != j of (r^-12 - 2 r^-6)
(eps = r_m = 1) plus 1/2 sum |x_i - xbar|^2, evaluated in float64 like ours, with
forces from torch.autograd.grad, the way DEM's LennardJonesEnergy does (cdist of
the batch, mask the diagonal, sum).
"""
import argparse
import time

import torch


def lj_energy(x, n, d):
    x = x.view(-1, n, d)
    r = torch.cdist(x, x)                         # (batch, n, n)
    mask = ~torch.eye(n, dtype=torch.bool).unsqueeze(0)
    r = r[mask.expand_as(r)].view(x.shape[0], n * (n - 1))
    lj = (r.pow(-12) - 2 * r.pow(-6)).sum(-1)     # ordered pairs: twice the i<j sum
    centre = x.mean(dim=1, keepdim=True)
    osc = 0.5 * (x - centre).pow(2).sum(dim=(-1, -2))
    return lj + osc


def start(n, batch, generator):
    side = 4 if n <= 13 else 5
    grid = torch.stack(torch.meshgrid(*[torch.arange(side, dtype=torch.float64)] * 3, indexing="ij"), -1).view(-1, 3)
    grid = grid - grid.mean(0)
    order = grid.norm(dim=1).argsort()
    x0 = grid[order[:n]] * 1.12
    x0 = x0 - x0.mean(0)
    return (x0.unsqueeze(0) + 0.02 * torch.randn(batch, n, 3, dtype=torch.float64, generator=generator)).view(batch, -1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    print(f"torch {torch.__version__}, threads: {args.threads}, batch: {args.batch}")
    for n, title in [(13, "LJ-13"), (55, "LJ-55")]:
        x = start(n, args.batch, g)
        def step():
            y = x.clone().requires_grad_(True)
            e = lj_energy(y, n, 3)
            (grad,) = torch.autograd.grad(e.sum(), y)
            return e, grad
        step()
        best = min(timed(step) for _ in range(args.repeats))
        print(f"{title} energy+gradient, batch {args.batch}: {args.batch / best:.0f} configurations/s "
              f"({best * 1e3:.3f} ms per batch)")
        with torch.no_grad():
            best_e = min(timed(lambda: lj_energy(x, n, 3)) for _ in range(args.repeats))
        print(f"{title} energy only,     batch {args.batch}: {args.batch / best_e:.0f} configurations/s")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
