#!/usr/bin/env python3
"""PyTorch eager reference for `swift run -c release Benchmarks egnn`.

The same function as Sources/Equivariant/EGNN.swift, written the way DEM's
`EGNN_dynamics` / E_GCL write it (concatenated edge input, Linear layers,
index_add_ segment sums): embedding of t, per layer
  m_ij = SiLU(W2 SiLU(W1 [h_i, h_j, r_ij, a_ij] + b1) + b2)
  x_i += sum_j (x_i - x_j)/(|x_i - x_j| + 1) * (w_c^T SiLU(W_c m_ij + b_c))
  h_i += W_n2 SiLU(W_n1 [h_i, sum_j m_ij] + b_n1) + b_n2   (not in the last layer)
output x^L - x^0 minus its mean; loss mean((v - y)^2); Adam.

usage: .venv-torch/bin/python scripts/bench_egnn_torch.py [--threads N] [--case NAME] [--seconds S]
       .venv-torch/bin/python scripts/bench_egnn_torch.py --sample lj13 [--batch 1024] [--threads N]
(--sample: forwards per second of the 64×3 network while drawing, as `ensemble bench --sample`.)
"""
import json
import argparse
import resource
import time

import torch
import torch.nn as nn

CASES = [
    ("dw4-128", "DW-4", 4, 2, 128),
    ("dw4-512", "DW-4", 4, 2, 512),
    ("lj13-128", "LJ-13", 13, 3, 128),
    ("lj13-512", "LJ-13", 13, 3, 512),
    ("lj55-64", "LJ-55", 55, 3, 64),
]


class GCL(nn.Module):
    def __init__(self, hidden, last):
        super().__init__()
        act = nn.SiLU()
        self.edge_mlp = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), act, nn.Linear(hidden, hidden), act)
        out = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(out.weight, gain=0.001)
        self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), act, out)
        self.node_mlp = None if last else nn.Sequential(nn.Linear(2 * hidden, hidden), act, nn.Linear(hidden, hidden))

    def forward(self, h, x, row, col, attr):
        diff = x[row] - x[col]
        radial = (diff ** 2).sum(1, keepdim=True)
        diff = diff / (torch.sqrt(radial) + 1)
        m = self.edge_mlp(torch.cat([h[row], h[col], radial, attr], dim=1))
        trans = diff * self.coord_mlp(m)
        x = x + torch.zeros_like(x).index_add_(0, row, trans)
        if self.node_mlp is not None:
            agg = torch.zeros_like(h).index_add_(0, row, m)
            h = h + self.node_mlp(torch.cat([h, agg], dim=1))
        return h, x


class EGNNDynamics(nn.Module):
    def __init__(self, n, d, hidden=64, layers=4):
        super().__init__()
        self.n, self.d = n, d
        self.embedding = nn.Linear(1, hidden)
        self.layers = nn.ModuleList([GCL(hidden, l == layers - 1) for l in range(layers)])
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        self.register_buffer("pairs", torch.tensor(pairs, dtype=torch.long).t())

    def forward(self, t, xs):
        b = xs.shape[0]
        offsets = (torch.arange(b) * self.n).repeat_interleave(self.pairs.shape[1])
        row = self.pairs[0].repeat(b) + offsets
        col = self.pairs[1].repeat(b) + offsets
        x0 = xs.reshape(b * self.n, self.d)
        h = self.embedding(t.repeat_interleave(self.n).unsqueeze(1))
        attr = ((x0[row] - x0[col]) ** 2).sum(1, keepdim=True)
        x = x0
        for layer in self.layers:
            h, x = layer(h, x, row, col, attr)
        v = (x - x0).reshape(b, self.n, self.d)
        return v - v.mean(dim=1, keepdim=True)


def timed(seconds, body):
    body()
    samples, start, cpu0 = [], time.perf_counter(), time.process_time()
    while len(samples) < 3 or (time.perf_counter() - start < seconds and len(samples) < 200):
        t0 = time.perf_counter()
        body()
        samples.append((time.perf_counter() - t0) * 1e3)
    cpu = (time.process_time() - cpu0) * 1e3 / len(samples)
    samples.sort()
    return samples[len(samples) // 2], samples[0], cpu


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--case", default=None)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--sample", default=None, help="dw4, lj13 or lj55: forward-only throughput of the 64x3 network")
    p.add_argument("--batch", type=int, default=1024)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.sample:
        n, d = {"dw4": (4, 2), "lj13": (13, 3), "lj55": (55, 3)}[a.sample]
        model = EGNNDynamics(n, d, hidden=64, layers=3)
        x = torch.randn(a.batch, n, d)
        t = torch.rand(a.batch)

        def fwd():
            with torch.no_grad():
                model(t, x)

        median, best, _ = timed(a.seconds, fwd)
        print(json.dumps({"case": a.sample, "torch": torch.__version__, "threads": a.threads, "batch": a.batch,
                          "ms_per_call": best, "forwards_per_second": a.batch / (best / 1e3)}, sort_keys=True))
        return
    print(f"EGNN (PyTorch {torch.__version__} eager, float32), threads {a.threads}; ms per batch: wall median (wall min) [CPU ms, all threads]")
    print("| case | batch | hidden×layers | edges/batch | forward | fwd+bwd | train step | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label, n, d, batch in CASES:
        if a.case and a.case != name:
            continue
        model = EGNNDynamics(n, d)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        x = torch.rand(batch, n, d) * 3 - 1.5
        y = torch.rand(batch, n, d) * 2 - 1
        t = torch.rand(batch)

        def fwd():
            with torch.no_grad():
                model(t, x)

        def fb():
            model.zero_grad(set_to_none=True)
            ((model(t, x) - y) ** 2).mean().backward()

        def step():
            opt.zero_grad(set_to_none=True)
            ((model(t, x) - y) ** 2).mean().backward()
            opt.step()

        r = [timed(a.seconds, f) for f in (fwd, fb, step)]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cells = " | ".join(f"{m:.2f} ({lo:.2f}) [{c:.1f}]" for m, lo, c in r)
        print(f"| {label} {n}×{d}D | {batch} | 64×4 | {batch * n * (n - 1)} | {cells} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
