"""From a similarity score to a probability, and how well scores rank pairs.

`Calibration` is Platt scaling: p = sigmoid(slope * score + intercept), fitted by
logistic regression on held-out pairs (the validation split), so that
`p >= 0.5` is the decision threshold of a calibrated classifier.

scikit-learn is imported where a calibration is fitted or scores are ranked, not to
apply one: a scoring worker applies it to every row and never needs sklearn (about
2 s of CPU a process to import on 2 cores).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Platt scaling (Platt 1999): p(same session) = sigmoid(slope * score + intercept),
    float64 of the scores' shape (`__call__`); `fit` learns slope and intercept.
    ValueError for a slope or intercept that is not a finite number (a damaged
    calibration file's `NaN` made every probability missing)."""

    slope: float
    intercept: float

    def __post_init__(self) -> None:
        for name in ("slope", "intercept"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise ValueError(f"a calibration's {name} must be a finite number, not {value!r}")

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> Calibration:
        """Platt scaling of `scores` against 0/1 `labels` (both classes needed).

        scores, labels: (n,); ValueError when the labels hold one class only. A logistic
        regression of C=1e4 (almost unregularised), whose slope may not be negative: a
        model that ranks the pairs backwards gets slope 0 and the positives' share as its
        p_same, no evidence either way (a negative slope had made it a good model).
        """
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise ValueError("calibration needs positive and negative pairs")
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=1e4).fit(np.asarray(scores, dtype=np.float64).reshape(-1, 1), labels)
        if fit.coef_[0, 0] < 0:  # a higher similarity never means a smaller p_same: no evidence, the base rate
            share = float(np.mean(labels == np.max(labels)))
            return cls(0.0, float(np.log(share / (1 - share))))
        return cls(float(fit.coef_[0, 0]), float(fit.intercept_[0]))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        z = self.slope * np.asarray(scores, dtype=np.float64) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        """{slope, intercept} as floats: the JSON of a session model's calibration file."""
        return asdict(self)


@dataclass(frozen=True)
class PairMetrics:
    """Ranking and decision quality of scores on labelled pairs."""

    auc: float
    accuracy: float
    pairs: int
    positives: int

    def to_dict(self) -> dict:
        """{auc, accuracy, pairs, positives}: the metrics of a scorer in `evaluate pairs`' report."""
        return asdict(self)


def pair_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> PairMetrics:
    """ROC AUC of `scores`, and accuracy of `scores >= threshold`.

    scores, labels: (n,), labels 0/1. `auc` is NaN unless the labels hold both classes,
    `accuracy` NaN for no pairs.
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    auc = float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")
    accuracy = float(((scores >= threshold).astype(int) == labels).mean()) if len(labels) else float("nan")
    return PairMetrics(auc, accuracy, len(labels), int(labels.sum()))


def calibrated_metrics(scores: np.ndarray, labels: np.ndarray) -> tuple[Calibration, PairMetrics]:
    """A model's calibration fitted on its scores of labelled pairs (`Calibration.fit`),
    and its metrics there: the AUC of the scores themselves, the accuracy of p_same >= 0.5.

    The AUC is taken before calibration: a monotone map does not change it, and for a
    model that ranks the pairs backwards (slope 0, `Calibration.fit`) it says so, where
    the calibrated p_same, one value, would say 0.5 (and a negative slope, 1 − AUC: a
    good model). scores, labels: (n,); ValueError as `fit`.
    """
    calibration = Calibration.fit(scores, labels)
    auc = pair_metrics(scores, labels).auc
    return calibration, replace(pair_metrics(calibration(scores), labels), auc=auc)


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold of highest accuracy (for an uncalibrated baseline)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores)
    positives = float(np.sum(labels))
    negatives = len(labels) - positives
    accuracy = (tpr * positives + (1 - fpr) * negatives) / len(labels)
    return float(thresholds[int(np.argmax(accuracy))])
