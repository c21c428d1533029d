"""The deterministic train/test split of a dataset, and a hash that proves which rows were used."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from mlops_gitops.spec.models import Split


@dataclass(frozen=True)
class TrainTest:
    train: pd.DataFrame
    test: pd.DataFrame
    test_hash: str  # sha256 over the test rows' positions and contents


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a frame (row order, index and values), stable across machines."""
    row_hashes = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def split_frame(frame: pd.DataFrame, split: Split) -> TrainTest:
    """The same data version and spec give the same rows on every machine."""
    from sklearn.model_selection import train_test_split

    stratify = frame[split.stratify] if split.stratify else None
    train, test = train_test_split(frame, test_size=split.test_fraction,
                                   random_state=split.seed, stratify=stratify)
    train, test = train.sort_index(), test.sort_index()
    return TrainTest(train, test, frame_hash(test))
