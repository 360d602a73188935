"""Group exact duplicates (same SHA-256) and near duplicates (perceptual hashes within a Hamming
distance) so that copies of one picture never land in two splits."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GROUP_ID_LENGTH = 16  # hex characters of the group's smallest SHA-256
COMPARISONS_PER_BLOCK = 1 << 22  # bounds the memory of one block of pairwise distances (32 MiB)


def group_duplicates(sha256s: Sequence[str], phashes: Sequence[int], max_distance: int) -> list[str]:
    """A group id per image: the first 16 hex characters of the smallest SHA-256 in its group.

    Images with the same SHA-256, or whose 64-bit perceptual hashes differ in at most
    max_distance bits, are joined, transitively (union-find). The id depends only on the
    members, not on their order, so it is stable across runs and seeds.
    """
    unique_shas, first_index, member_of = np.unique(np.asarray(sha256s, dtype=str), return_index=True,
                                                   return_inverse=True)
    # Identical bytes have identical perceptual hashes: compare one image per SHA-256.
    hashes = np.asarray(phashes, dtype=np.uint64)[first_index]
    forest = DisjointSets(len(unique_shas))
    for left, right in near_pairs(hashes, max_distance):
        forest.union(int(left), int(right))
    roots = np.array([forest.find(i) for i in range(len(unique_shas))], dtype=np.int64)
    # np.unique sorted the SHA-256s, so the smallest index in a group holds its smallest SHA-256.
    smallest = np.full(len(unique_shas), len(unique_shas), dtype=np.int64)
    np.minimum.at(smallest, roots, np.arange(len(unique_shas)))
    group_of_sha = [unique_shas[smallest[root]][:GROUP_ID_LENGTH] for root in roots]
    return [group_of_sha[i] for i in np.ravel(member_of)]


def near_pairs(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Index pairs (i < j) whose hashes differ in at most max_distance bits, as an (n, 2) array.

    All pairs are compared, vectorised in blocks of rows against the rows after them; memory
    stays bounded and the Python loop runs once per block, not once per pair.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    count = len(hashes)
    block = max(1, COMPARISONS_PER_BLOCK // max(count, 1))
    found = []
    for start in range(0, count, block):
        rows = hashes[start:start + block]
        distances = np.bitwise_count(rows[:, None] ^ hashes[None, start:])
        # Keep each pair once: column j (offset by start) must come after row i.
        offsets = np.arange(len(rows))[:, None] < np.arange(count - start)[None, :]
        i, j = np.nonzero((distances <= max_distance) & offsets)
        found.append(np.column_stack([i + start, j + start]))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


class DisjointSets:
    """Union-find with path halving and union by size."""

    def __init__(self, count: int) -> None:
        self.parent = list(range(count))
        self.size = [1] * count

    def find(self, item: int) -> int:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, left: int, right: int) -> None:
        left, right = self.find(left), self.find(right)
        if left == right:
            return
        if self.size[left] < self.size[right]:
            left, right = right, left
        self.parent[right] = left
        self.size[left] += self.size[right]
