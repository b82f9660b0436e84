"""How well will features transfer? Scores computed before (or instead of) training.

* :func:`logme` -- LogME (You, Liu, Wang, Long, ICML 2021, "LogME: Practical
  Assessment of Pre-trained Models for Transfer Learning"): the log marginal
  likelihood (evidence) of a Bayesian linear model on the features, per
  sample, with its two hyper-parameters set by maximising that evidence.
  Implemented here from the paper's equations (below); no training, one SVD.
* :func:`knn_score` -- leave-one-out k-nearest-neighbour accuracy (cosine).
* :func:`linear_probe_score` -- cross-validated logistic-regression accuracy.

The model behind LogME, for one target column ``y`` (n values) and features
``F`` (n x D): ``y = F w + e`` with prior ``w ~ N(0, I/alpha)`` and noise
``e ~ N(0, 1/beta)``. Integrating ``w`` out gives the evidence::

    L(alpha, beta) = n/2 log beta + D/2 log alpha - n/2 log 2 pi
                     - beta/2 ||F m - y||^2 - alpha/2 m.m - 1/2 log det A,
    A = alpha I + beta F'F,   m = beta A^-1 F' y  (the posterior mean of w).

Setting its derivatives to zero gives the fixed point (MacKay's updates)::

    gamma = sum_i beta s_i / (alpha + beta s_i)      (s_i: eigenvalues of F'F)
    alpha = gamma / m.m,   beta = (n - gamma) / ||F m - y||^2,

iterated from alpha = beta = 1. With the SVD ``F = U S V'`` every quantity
is a sum over the singular values and ``z = U' y``, so each iteration costs
O(min(n, D)). For classification, ``y`` is each one-hot column in turn and
LogME is the mean of ``L / n`` over the classes. Larger is better; the value
compares feature extractors **on the same target data**, it is not an accuracy.

Scores like these rank models only roughly (Agostinelli et al., ECCV 2022):
show them next to a measured accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LogMEResult",
    "knn_score",
    "linear_probe_score",
    "log_evidence",
    "logme",
    "logme_details",
    "transferability_scores",
]


@dataclass
class LogMEResult:
    """LogME with the evidence-maximising hyper-parameters of each target column."""

    score: float
    per_target: np.ndarray  # L / n for each column (class)
    alpha: np.ndarray
    beta: np.ndarray
    iterations: np.ndarray


def _as_targets(labels: np.ndarray, regression: bool) -> np.ndarray:
    y = np.asarray(labels)
    if regression:
        y = y.astype(np.float64)
        return y[:, None] if y.ndim == 1 else y
    if y.ndim != 1:
        raise ValueError(f"Class labels must be one value per sample; got shape {y.shape}.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("LogME needs at least two classes in the labels.")
    return (y[:, None] == classes[None, :]).astype(np.float64)


def _check(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"Features must be (n_samples, n_features); got shape {f.shape}.")
    if len(f) != len(labels):
        raise ValueError(f"{len(f)} feature rows but {len(labels)} labels.")
    if len(f) < 2:
        raise ValueError("LogME needs at least two samples.")
    if not np.all(np.isfinite(f)):
        raise ValueError("Features contain NaN or infinity.")
    return f


def logme_details(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    regression: bool = False,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> LogMEResult:
    """LogME and, for each target column, the maximising ``alpha``, ``beta``."""
    y_all = _as_targets(labels, regression)
    f = _check(features, y_all)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # u: n x k, k = min(n, d)
    s2 = s**2
    k = len(s)
    scores, alphas, betas, iters = [], [], [], []
    for y in y_all.T:
        z = u.T @ y
        z2 = z**2
        outside = max(float(y @ y - z2.sum()), 0.0)  # |y|^2 outside the span of F
        alpha, beta = 1.0, 1.0
        for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
            denom = alpha + beta * s2
            gamma = float(np.sum(beta * s2 / denom))
            m2 = float(np.sum((beta * s * z / denom) ** 2))  # m.m
            res2 = float(np.sum((alpha * z / denom) ** 2)) + outside  # |F m - y|^2
            new_alpha = gamma / max(m2, 1e-300)
            new_beta = (n - gamma) / max(res2, 1e-300)
            done = (abs(new_alpha - alpha) <= tol * abs(alpha)
                    and abs(new_beta - beta) <= tol * abs(beta))
            alpha, beta = max(new_alpha, 1e-300), max(new_beta, 1e-300)
            if done:
                break
        denom = alpha + beta * s2
        m2 = float(np.sum((beta * s * z / denom) ** 2))
        res2 = float(np.sum((alpha * z / denom) ** 2)) + outside
        logdet = float(np.sum(np.log(denom))) + (d - k) * np.log(alpha)
        evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                    - beta / 2 * res2 - alpha / 2 * m2 - logdet / 2)
        scores.append(evidence / n)
        alphas.append(alpha)
        betas.append(beta)
        iters.append(it)
    per = np.asarray(scores)
    return LogMEResult(float(per.mean()), per, np.asarray(alphas), np.asarray(betas),
                       np.asarray(iters))


def logme(features: np.ndarray, labels: np.ndarray, *, regression: bool = False) -> float:
    """LogME of ``features`` for ``labels`` (classes, or real targets with ``regression``).

    The mean, over target columns, of the maximised log evidence per sample.
    Higher means the features explain the labels better with a linear model.
    """
    return logme_details(features, labels, regression=regression).score


def log_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """The evidence ``L(alpha, beta) / n`` for one target column, computed directly.

    The plain formula with a D x D matrix (O(D^3)): slow, for checking :func:`logme`.
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    _, logdet = np.linalg.slogdet(a)
    res = f @ m - y
    value = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
             - beta / 2 * res @ res - alpha / 2 * m @ m - logdet / 2)
    return float(value / n)


def knn_score(features: np.ndarray, labels: np.ndarray, *, k: int = 5) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour vote (cosine similarity)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if len(f) != len(y):
        raise ValueError(f"{len(f)} feature rows but {len(y)} labels.")
    if len(f) < 2:
        raise ValueError("knn_score needs at least two samples.")
    f = f - f.mean(axis=0)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    classes, yi = np.unique(y, return_inverse=True)
    k = max(1, min(k, len(f) - 1))
    correct = 0
    for start in range(0, len(f), 1024):  # bounded memory: 1024 x n similarities at a time
        sim = f[start:start + 1024] @ f.T
        rows = np.arange(len(sim))
        sim[rows, start + rows] = -np.inf  # leave the sample itself out
        nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(sim), len(classes)))
        np.add.at(votes, (np.repeat(rows, k), yi[nn].reshape(-1)), 1.0)
        # Ties go to the nearest neighbour's class.
        nearest = yi[nn[rows, np.argmax(sim[rows[:, None], nn], axis=1)]]
        votes[rows, nearest] += 0.5
        correct += int(np.sum(np.argmax(votes, axis=1) == yi[start:start + 1024]))
    return correct / len(f)


def linear_probe_score(features: np.ndarray, labels: np.ndarray, *, folds: int = 5,
                       seed: int = 0) -> float:
    """Mean accuracy of a logistic regression in stratified k-fold cross-validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    folds = max(2, min(folds, smallest))
    if smallest < 2:
        raise ValueError("linear_probe_score needs at least two samples of every class.")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, features, y, cv=cv)))


def transferability_scores(features: np.ndarray, labels: np.ndarray, *, k: int = 5) -> dict:
    """LogME, kNN and linear-probe scores of one feature set, as a dict."""
    return {
        "logme": logme(features, labels),
        "knn": knn_score(features, labels, k=k),
        "linear_probe": linear_probe_score(features, labels),
    }
