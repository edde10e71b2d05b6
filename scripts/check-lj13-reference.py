#!/usr/bin/env python3
"""Is the LJ-13 reference test set distributed as exp(-u)? An independent check in NumPy.

u(x) = sum over ordered pairs (i != j) of r^-12 - 2 r^-6, plus 1/2 sum_i |x_i - mean(x)|^2
(kT = 1; ../shared/reference/README and the plugin's `preset=lj13`). The reference is split in
two halves A and B at random. Vectorised random-walk Metropolis chains start from every
configuration of A and run --steps steps; the script prints the mean energy, the radius of
gyration and the share of near-neighbour pairs as they go, and writes A before and after the
chains as .npy files. Then compare each with B (aligned W2 is what the table reports):

  ensemble evaluate out/lj13-check/A.npy --reference out/lj13-check/B.npy --plugin lennard-jones --param preset=lj13
  ensemble evaluate out/lj13-check/A-relaxed.npy --reference out/lj13-check/B.npy ...

If the reference were a sample of exp(-u), the chains would leave A's distribution where it is
and both numbers would agree within their noise. If A-relaxed scores higher against B than A
does, the two halves share something that exp(-u) does not keep (correlated or under-dispersed
frames), and the halves-against-each-other "floor" is lower than any exact sampler can reach.

Usage: python scripts/check-lj13-reference.py [--reference PATH] [--steps 20000] [--out out/lj13-check]
"""
import argparse
import os

import numpy as np

N = 13
I, J = np.triu_indices(N, 1)


def pair_distances(x):
    return np.linalg.norm(x[:, I] - x[:, J], axis=-1)


def energy(x):
    r = pair_distances(x)
    inv6 = r ** -6
    centred = x - x.mean(1, keepdims=True)
    return 2.0 * (inv6 * inv6 - 2.0 * inv6).sum(-1) + 0.5 * (centred ** 2).sum((1, 2))


def report(x, label):
    r = pair_distances(x)
    centred = x - x.mean(1, keepdims=True)
    gyration = np.sqrt((centred ** 2).sum(-1).mean(-1))
    print(f"{label:>26}: mean u {energy(x).mean():8.3f}   radius of gyration {gyration.mean():.4f} "
          f"± {gyration.std():.4f}   pairs with r < 1.3: {(r < 1.3).sum(-1).mean():.3f}", flush=True)


def chains(x, steps, rng, step_size):
    u = energy(x)
    accepted = 0.0
    for t in range(1, steps + 1):
        y = x + step_size * rng.normal(size=x.shape)
        uy = energy(y)
        accept = np.log(rng.random(len(x))) < u - uy
        x[accept], u[accept] = y[accept], uy[accept]
        accepted += accept.mean()
        if t % 5000 == 0:
            report(x, f"step {t}")
            print(f"{'':>26}  acceptance {accepted / t:.3f}", flush=True)
    return x - x.mean(1, keepdims=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="../shared/reference/test_split_LJ13-1000.npy")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--step-size", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/lj13-check")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    reference = np.load(args.reference).astype(np.float64).reshape(-1, N, 3)
    order = rng.permutation(len(reference))
    half = len(reference) // 2
    a, b = reference[order[:half]], reference[order[half:]]
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "A.npy"), a.reshape(len(a), -1))
    np.save(os.path.join(args.out, "B.npy"), b.reshape(len(b), -1))
    report(a, "half A (reference)")
    report(b, "half B (reference)")
    relaxed = chains(a.copy(), args.steps, rng, args.step_size)
    np.save(os.path.join(args.out, "A-relaxed.npy"), relaxed.reshape(len(relaxed), -1))
    print(f"wrote {args.out}/A.npy, B.npy and A-relaxed.npy")


if __name__ == "__main__":
    main()
