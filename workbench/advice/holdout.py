"""Held-out evidence from the training split: stratified folds, scores with an uncertainty, and
linear probes whose regularisation is chosen inside each fold.

The validation and test splits are never touched here: the advisor's trials hold out part of the
*training* images (k folds when the set is small, down to one image per class), so the final
report on val / test stays an honest estimate of the run the user then trains.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from workbench.errors import UserError

C_GRID = (0.01, 0.1, 1.0)  # inverse L2 strength on standardised features
MAX_DIMS = 256  # wider features are projected on their leading principal components, per fold
PROBE_ITER = 200
BOOTSTRAP = 200


@dataclass(frozen=True)
class Folds:
    """Fold number of each image (-1: never held out: its class has a single image)."""

    assignment: np.ndarray
    k: int
    kept_in_training: tuple[int, ...] = ()  # classes with one image: always trained on

    def held_out(self, fold: int) -> np.ndarray:
        """Positions held out in `fold`."""
        return np.flatnonzero(self.assignment == fold)

    def training(self, fold: int) -> np.ndarray:
        """Positions trained on in `fold` (everything not held out in it)."""
        return np.flatnonzero(self.assignment != fold)

    @property
    def num_held_out(self) -> int:
        """Images held out over all folds."""
        return int((self.assignment >= 0).sum())


def make_folds(labels: np.ndarray, max_folds: int = 5, seed: int = 0) -> Folds:
    """Stratified folds: each class's images dealt round-robin from a random start.

    k is `max_folds`, fewer when no class has that many images (down to 2: one image per class
    held out). A class with one image is never held out. Raises `UserError` when fewer than two
    classes have two images: no trial can then score anything.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if (counts >= 2).sum() < 2:
        raise UserError("the dataset is too small for any trial: it needs two classes with at "
                        "least two training images each")
    k = int(max(2, min(max_folds, counts.max())))
    rng = np.random.default_rng(seed)
    assignment = np.full(len(labels), -1)
    for cls, n in zip(classes, counts, strict=True):
        if n < 2:
            continue
        members = rng.permutation(np.flatnonzero(labels == cls))
        assignment[members] = (rng.integers(k) + np.arange(n)) % k
    single = tuple(int(c) for c, n in zip(classes, counts, strict=True) if n < 2)
    return Folds(assignment, k, single)


def score(y_true: np.ndarray, y_pred: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Balanced accuracy of held-out predictions and its bootstrap standard error."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [_balanced(y_true[i], y_pred[i]) for i in
             (rng.integers(0, len(y_true), len(y_true)) for _ in range(BOOTSTRAP))]
    return _balanced(y_true, y_pred), float(np.std(draws))


def paired_gain(y_true: np.ndarray, y_pred: np.ndarray, y_base: np.ndarray, seed: int = 0
                ) -> tuple[float, float]:
    """Balanced accuracy `y_pred` gains over `y_base` on the same held-out images, and the
    bootstrap standard error of that gain: both resampled together, so what the two get right
    or wrong alike cancels (far tighter than the two scores' own errors added as if
    independent)."""
    y_true, y_pred, y_base = np.asarray(y_true), np.asarray(y_pred), np.asarray(y_base)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [_balanced(y_true[i], y_pred[i]) - _balanced(y_true[i], y_base[i]) for i in
             (rng.integers(0, len(y_true), len(y_true)) for _ in range(BOOTSTRAP))]
    gain = _balanced(y_true, y_pred) - _balanced(y_true, y_base)
    return gain, float(np.std(draws))


def _balanced(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Balanced accuracy over the classes present in `y_true` (a held-out part may lack some):
    the mean recall of those classes, what scikit-learn's `balanced_accuracy_score` gives there.
    In numpy: the bootstraps call it thousands of times, and scikit-learn's input checks cost
    more than the arithmetic (14 s of a 70 s ask)."""
    classes, inverse = np.unique(y_true, return_inverse=True)
    hits = np.bincount(inverse, weights=(y_true == y_pred), minlength=len(classes))
    return float(np.mean(hits / np.bincount(inverse, minlength=len(classes))))


def _project(x_train: np.ndarray, x_test: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardise on the training part. Wide features go to their leading components when there
    are more training images than `MAX_DIMS`; with fewer images than dimensions, to the span of
    the (centred) training rows instead, which loses nothing: an L2-regularised linear model's
    weights lie in that span, so the fit and its predictions are the same, with as many weights
    per class as images instead of dimensions (1280 or 5120 per class for a 2x2-pooled block4,
    240 for 300 images: most of a 50-class probe's time)."""
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    n, dims = x_train.shape
    if dims > MAX_DIMS and n > MAX_DIMS:
        pca = PCA(n_components=MAX_DIMS, svd_solver="randomized", random_state=seed)
    elif dims > n:
        pca = PCA(n_components=n, svd_solver="full")
    else:
        return x_train, x_test
    return pca.fit_transform(x_train), pca.transform(x_test)


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    with warnings.catch_warnings():
        # a probe stopped at PROBE_ITER still ranks the candidates; more costs seconds each
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, max_iter=PROBE_ITER).fit(x, y)


def choose_c(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """The C of `C_GRID` scoring best on an inner stratified split of (x, y) (the outer fold's
    training part only); the middle value when the part is too small to split."""
    try:
        inner = make_folds(y, max_folds=3, seed=seed + 1)
    except UserError:
        return C_GRID[len(C_GRID) // 2]
    test, train = inner.held_out(0), inner.training(0)
    if len(np.unique(y[train])) < 2 or len(test) == 0:
        return C_GRID[len(C_GRID) // 2]
    best, best_c = -1.0, C_GRID[len(C_GRID) // 2]
    for c in C_GRID:
        model = _fit(x[train], y[train], c)
        value = _balanced(y[test], model.predict(x[test]))
        if value > best + 1e-9:
            best, best_c = value, c
    return best_c


def probe_predictions(x: np.ndarray, y: np.ndarray, folds: Folds, seed: int = 0
                      ) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold predictions of a logistic regression (C chosen inside each fold) for every
    held-out image (-1 where none), and the C each fold chose.

    BLAS runs on one thread: these fits are small, and several BLAS threads competing with
    torch's (or another process's) make them 10 to 40 times slower on a busy CPU."""
    with threadpool_limits(limits=1):
        return _probe_predictions(x, y, folds, seed)


def _probe_predictions(x: np.ndarray, y: np.ndarray, folds: Folds, seed: int
                       ) -> tuple[np.ndarray, list[float]]:
    pred = np.full(len(y), -1)
    chosen = []
    for fold in range(folds.k):
        test, train = folds.held_out(fold), folds.training(fold)
        if len(test) == 0 or len(np.unique(y[train])) < 2:
            continue
        x_train, x_test = _project(x[train].astype(np.float64), x[test].astype(np.float64), seed)
        c = choose_c(x_train, y[train], seed)
        pred[test] = _fit(x_train, y[train], c).predict(x_test)
        chosen.append(c)
    return pred, chosen
