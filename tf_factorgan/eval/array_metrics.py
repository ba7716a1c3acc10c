"""Metrics of generated vector samples of K parts against real ones (the `arrays`
experiment), computed on the features themselves (standardised units there: each
feature scaled by its training std, so features of any scale count alike).

  fd_<part>    Frechet distance (`eval.fid`) between Gaussians fitted to the
               generated and the real observations of one part: its marginal.
  fd_marginal_mean
               their mean over the K parts.
  fd_joint     the same on whole samples (all parts concatenated) against real paired
               samples: the joint, dependencies between parts included.
  dependency_distance
               how far the generated cross-part correlations are from the real ones.
               For parts i, j with F_i, F_j features, R_ij is the [F_i, F_j] matrix of
               Pearson correlations corr(x_i[a], x_j[b]) over the samples (0 where a
               feature is constant). Then

                 d_ij = ||R_ij(real) - R_ij(generated)||_F / sqrt(F_i * F_j)

               (the root mean square of the entrywise differences, in [0, 2]), and
               dependency_distance is the mean of d_ij over the K (K - 1) / 2 pairs
               i < j (`dependency_pairs` keeps each d_ij, keyed "<i>,<j>").

Two real parts with correlation rho and generated parts without any give d = |rho|.
"""

import itertools
from typing import Sequence

import numpy as np

from tf_factorgan.eval import fid


def _matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must have shape [N, F] with N >= 2, got {x.shape}")
    return x


def frechet(real, generated) -> float:
    """Frechet distance between Gaussians fitted to real [N, F] and generated [M, F]."""
    return fid.fid_from_features(_matrix(real, "real"), _matrix(generated, "generated"))


def cross_correlation(x, y) -> np.ndarray:
    """[F_x, F_y] Pearson correlations between the columns of x [N, F_x] and y [N, F_y]
    (the same N samples); 0 for a constant column."""
    x, y = _matrix(x, "x"), _matrix(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same samples, got {len(x)} and {len(y)} rows")
    return _unit_columns(x).T @ _unit_columns(y)


def _unit_columns(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to norm 1; constant ones (centred norm within
    rounding of 0, relative to the column's size) become 0."""
    centred = x - x.mean(axis=0)
    norm = np.sqrt((centred * centred).sum(axis=0))
    constant = norm <= 1e-9 * np.sqrt((x * x).sum(axis=0))
    return centred / np.where(constant, np.inf, norm)


def dependency_distances(real_parts: Sequence, generated_parts: Sequence) -> dict:
    """{(i, j): d_ij} for i < j (module docstring) of K real parts [N, F_k] (the same
    N samples) and K generated parts [M, F_k]."""
    if len(real_parts) != len(generated_parts) or len(real_parts) < 2:
        raise ValueError(f"need the same K >= 2 real and generated parts, got "
                         f"{len(real_parts)} and {len(generated_parts)}")
    result = {}
    for i, j in itertools.combinations(range(len(real_parts)), 2):
        real = cross_correlation(real_parts[i], real_parts[j])
        generated = cross_correlation(generated_parts[i], generated_parts[j])
        if real.shape != generated.shape:
            raise ValueError(f"parts {i}, {j}: real cross-correlations {real.shape}, "
                             f"generated {generated.shape}")
        result[(i, j)] = float(np.sqrt(np.mean((real - generated) ** 2)))
    return result


def evaluate(marginal_refs: Sequence, joint_ref: Sequence, generated: Sequence,
             part_names: Sequence[str]) -> dict:
    """Every metric of the module docstring.

    Args:
      marginal_refs: per part, real rows [N_k, F_k] (its observations, any count).
      joint_ref: per part, real rows [N, F_k] of the same N whole samples.
      generated: per part, generated rows [M, F_k] of the same M samples.
      part_names: K names for the keys.
    """
    metrics = {f"fd_{name}": frechet(real, fake)
               for name, real, fake in zip(part_names, marginal_refs, generated)}
    metrics["fd_marginal_mean"] = float(np.mean(list(metrics.values())))
    metrics["fd_joint"] = frechet(np.concatenate(joint_ref, axis=1), np.concatenate(generated, axis=1))
    pairs = dependency_distances(joint_ref, generated)
    metrics["dependency_distance"] = float(np.mean(list(pairs.values())))
    metrics["dependency_pairs"] = {f"{part_names[i]},{part_names[j]}": d for (i, j), d in pairs.items()}
    return metrics
