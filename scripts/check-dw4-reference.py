#!/usr/bin/env python3
"""Is the DW-4 reference test set distributed as exp(-u)? An independent check in NumPy.

u(x) = sum over the 6 pairs of -4 (d - 4)^2 + 0.9 (d - 4)^4  (a = 0, kT = 1; the double-well
plugin's defaults and DEM's/bgflow's MultiDoubleWellPotential). Many random-walk Metropolis
chains, vectorised, run from two starts: configurations drawn from the reference itself and
Gaussian noise. Both are printed every 5000 steps: the mean energy and the share of
configurations with k pair distances below d0 = 4 ("short pairs"). When both starts settle
on the same shares and those differ from the reference's, the reference is not the
Boltzmann distribution of this energy, and no exact sampler can match it.
Writes --out (default out/dw4-rwm.npy): 10000 configurations from the Gaussian start, for
`ensemble evaluate out/dw4-rwm.npy --reference .../test_split_DW4.npy --plugin double-well`.

Usage: python scripts/check-dw4-reference.py [--reference PATH] [--chains 20000] [--steps 20000]
"""
import argparse
import itertools

import numpy as np

PAIRS = list(itertools.combinations(range(4), 2))


def distances(x):
    return np.stack([np.linalg.norm(x[:, i] - x[:, j], axis=-1) for i, j in PAIRS], -1)


def energy(x):
    e = distances(x) - 4.0
    return (-4.0 * e ** 2 + 0.9 * e ** 4).sum(-1)


def report(x, label):
    short = np.bincount((distances(x) < 4.0).sum(-1), minlength=7) / len(x)
    print(f"{label:>28}: mean u {energy(x).mean():8.3f}   share with k short pairs, k=0..6: "
          + " ".join(f"{s:.3f}" for s in short), flush=True)
    return short


def chains(x, steps, rng, label, step_size=0.35):
    u = energy(x)
    for t in range(1, steps + 1):
        y = x + step_size * rng.normal(size=x.shape)
        uy = energy(y)
        accept = np.log(rng.random(len(x))) < u - uy
        x[accept], u[accept] = y[accept], uy[accept]
        if t % 5000 == 0:
            report(x, f"{label}, step {t}")
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="../shared/reference/test_split_DW4.npy")
    parser.add_argument("--chains", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/dw4-rwm.npy")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    reference = np.load(args.reference).reshape(-1, 4, 2)
    report(reference, "reference test set")
    from_reference = chains(reference[rng.integers(0, len(reference), args.chains)].copy(), args.steps, rng,
                            "from the reference")
    from_noise = chains(rng.normal(0.0, 2.0, (args.chains, 4, 2)), args.steps, rng, "from Gaussian noise")
    for label, x in (("from the reference", from_reference), ("from Gaussian noise", from_noise)):
        k = (distances(x) < 4.0).sum(-1) == 2
        print(f"two short pairs, {label}: {100 * k.mean():.1f} % ± {100 * k.std() / np.sqrt(len(k)):.1f} "
              f"(chains are independent)")
    keep = from_noise[rng.choice(len(from_noise), min(10000, len(from_noise)), replace=False)]
    np.save(args.out, keep.reshape(len(keep), -1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
