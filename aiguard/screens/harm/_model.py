"""The shipped linear model: hashed n-gram weights per head, scored per sentence with numpy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aiguard.errors import ConfigError
from aiguard.screens.harm._features import (
    NGRAM_SIZES,
    IdentityMask,
    featurize,
    mark_scopes,
    normalize_all,
    sentences,
)

DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "model.npz"


@dataclass(frozen=True, slots=True)
class SentenceScores:
    spans: list[tuple[int, int]]  # sentence offsets in the original text
    probs: npt.NDArray[np.float64]  # shape (len(spans), len(heads))
    segments: list[str]  # what the model read: normalised, identity-masked, scope-marked


class LinearModel:
    """Multi-label logistic regression over hashed character 1-5-grams (see bench/train_harm.py)."""

    def __init__(
        self,
        weights: npt.NDArray[np.float32],
        bias: npt.NDArray[np.float32],
        heads: tuple[str, ...],
        bits: int,
        mask: IdentityMask | None = None,
        scopes: bool = False,
    ) -> None:
        self.weights = weights
        # one contiguous vector per head: a 1-D gather is several times faster than rows
        self._columns = [np.ascontiguousarray(weights[:, k]) for k in range(weights.shape[1])]
        self.bias = bias
        self.heads = heads
        self.bits = bits
        self.mask = mask or IdentityMask()
        self.scopes = scopes  # the model was trained with negation/quote scope marking

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> LinearModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                # float32 in memory: float16 gathers are slower and the file stays small
                weights = data["weights"].astype(np.float32)
                bias = data["bias"].astype(np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot load harm model {path}: {exc}") from None
        if tuple(meta.get("ngrams", ())) != NGRAM_SIZES:
            raise ConfigError(f"harm model {path} was trained with other n-gram sizes")
        bits = int(meta["bits"])
        if weights.shape != (1 << bits, len(meta["heads"])):
            raise ConfigError(f"harm model {path} has a malformed weight matrix")
        identities = meta.get("identities", {})
        mask = IdentityMask(
            identities.get("latin", ()), identities.get("cjk", ()), identities.get("adjectives", ())
        )
        return cls(weights, bias, tuple(meta["heads"]), bits, mask, bool(meta.get("scopes")))

    def score(self, text: str, spans: list[tuple[int, int]] | None = None) -> SentenceScores:
        """Probabilities per sentence and head; the caller takes maxima and builds spans."""
        if spans is None:
            spans = sentences(text)
        if not spans:
            return SentenceScores([], np.zeros((0, len(self.heads))), [])
        segments = [self.mask(s) for s in normalize_all([text[a:b] for a, b in spans])]
        if self.scopes:
            segments = [mark_scopes(s) for s in segments]
        bucket, segment, norm = featurize(segments, self.bits)
        logits = np.empty((len(spans), len(self.heads)))
        for k, column in enumerate(self._columns):
            logits[:, k] = np.bincount(segment, weights=column[bucket], minlength=len(spans))
        logits *= norm[:, None]  # the 1/sqrt(count) scaling is per segment: apply it once
        logits += self.bias
        return SentenceScores(spans, 1.0 / (1.0 + np.exp(-logits)), segments)
