"""Connected components of an undirected graph given as edge arrays (numpy only).

Used to turn duplicate pairs into duplicate groups. A vectorised label propagation with
pointer jumping: every node starts as its own label, each round pulls the smaller label
across every edge and then jumps labels to their roots; it stops when nothing changes.
Written here (about 20 lines) so the torch-free core does not need scipy for
`scipy.sparse.csgraph.connected_components`; results are identical (tested against it).
"""

from __future__ import annotations

import numpy as np


def connected_components(n_nodes: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Component label of each node: the smallest node index in its component."""
    labels = np.arange(n_nodes, dtype=np.int64)
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    if len(first) == 0:
        return labels
    while True:
        smaller = np.minimum(labels[first], labels[second])
        before = labels.copy()
        np.minimum.at(labels, first, smaller)
        np.minimum.at(labels, second, smaller)
        while True:  # pointer jumping: label <- label of label, to the root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels
