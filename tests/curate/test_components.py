import numpy as np

from biomedica.curate.components import connected_components


def test_components_label_each_node_with_smallest_member():
    labels = connected_components(7, np.array([4, 1, 5]), np.array([1, 2, 6]))
    assert labels.tolist() == [0, 1, 1, 3, 1, 5, 5]


def test_components_match_scipy_on_random_graph():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    rng = np.random.default_rng(3)
    first, second = rng.integers(0, 2000, 1500), rng.integers(0, 2000, 1500)
    ours = connected_components(2000, first, second)
    count, theirs = scipy_components(coo_matrix((np.ones(1500), (first, second)), shape=(2000, 2000)), directed=False)
    assert len(set(ours.tolist())) == count
    # same partition: each of our components maps to exactly one of scipy's and vice versa
    assert len(set(zip(ours.tolist(), theirs.tolist()))) == count


def test_no_edges_means_singletons():
    assert connected_components(3, np.array([], int), np.array([], int)).tolist() == [0, 1, 2]
