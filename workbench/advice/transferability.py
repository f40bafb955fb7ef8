"""Transferability evidence from the pretrained ImageNet head: NCE and LEEP.

Both say how well ImageNet's 1000 labels, as predicted on the user's images, explain the user's
labels. They mostly track the number of target classes (fewer classes: closer to 0), so the
report shows them as evidence and never uses them as the similarity axis.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],) or probs.shape[0] == 0:
        raise ValueError("need probabilities [n, source classes] and n target labels")
    return probs, labels


def _joint(weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Empirical joint P(y, z) from per-image source weights [n, Z] and target labels."""
    _, y = np.unique(labels, return_inverse=True)
    joint = np.zeros((y.max() + 1, weights.shape[1]))
    np.add.at(joint, y, weights)
    return joint / weights.shape[0]


def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """Negative conditional entropy -H(Y | Z) (Tran et al. 2019), in nats; <= 0, higher is better.

    Z is the source head's hard prediction (argmax) on each image, Y the user's label.
    """
    probs, labels = _check(source_probs, labels)
    hard = np.zeros_like(probs)
    hard[np.arange(len(probs)), probs.argmax(axis=1)] = 1.0
    joint = _joint(hard, labels)
    p_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    cond = joint[nz] / np.broadcast_to(p_z, joint.shape)[nz]
    return float(np.sum(joint[nz] * np.log(cond)))


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """Log Expected Empirical Prediction (Nguyen et al. 2020), in nats; <= 0, higher is better.

    The soft source distribution theta(x) gives P(y | z) from the empirical joint; LEEP is the
    mean log-likelihood of each image's label under sum_z P(y | z) theta(x)_z.
    """
    probs, labels = _check(source_probs, labels)
    _, y = np.unique(labels, return_inverse=True)
    joint = _joint(probs, labels)
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), _TINY)  # P(y | z), [Y, Z]
    eep = probs @ cond.T  # [n, Y]
    return float(np.mean(np.log(np.maximum(eep[np.arange(len(y)), y], _TINY))))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
