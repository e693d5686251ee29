"""The order to run a graph's nodes in, so that independent heavy layers run together.

A pure function of the graph's structure (:func:`schedule`); :class:`mlstm.graph.Graph`
caches its result per (heavy set, direction). Written as Kahn's algorithm (counts of
unfinished needs), so a chain of 10,000 layers schedules in linear time.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence, Set

__all__ = ["schedule"]


def schedule(order: Sequence[int], needs: Mapping[int, Set[int]],
             heavy: Set[int]) -> list[list[int]]:
    """Groups of node positions to run one after another.

    Parameters
    ----------
    order : list of int
        The nodes to run, in a valid order (topological forward, reversed backward).
    needs : dict int -> set of int
        What each node waits for (among ``order``): its producers forward, its consumers
        backward.
    heavy : set of int
        Nodes worth a thread of their own.

    Returns
    -------
    list of list of int
        Light nodes run one at a time as soon as what they need is done, so that
        independent heavy nodes become ready together; those then form one group, run at
        the same time. The result does not depend on the thread count.

    Examples
    --------
    Two heavy LSTMs (1, 2) fed by inputs, a light merge (3) of both:

    >>> schedule([1, 2, 3], {1: set(), 2: set(), 3: {1, 2}}, heavy={1, 2})
    [[1, 2], [3]]
    >>> schedule([1, 2, 3], {1: set(), 2: set(), 3: {1, 2}}, heavy=set())
    [[1], [2], [3]]
    """
    position = {k: i for i, k in enumerate(order)}
    unfinished = {k: len(needs[k]) for k in order}
    dependents: defaultdict[int, list[int]] = defaultdict(list)
    for k in order:
        for need in needs[k]:
            dependents[need].append(k)
    ready = [k for k in order if unfinished[k] == 0]
    groups: list[list[int]] = []
    while ready:
        light = [k for k in ready if k not in heavy]
        chosen = light or ready
        groups += [[k] for k in light] if light else [list(ready)]
        chosen_set = set(chosen)
        newly_ready: list[int] = []
        for k in chosen:
            for dependent in dependents[k]:
                unfinished[dependent] -= 1
                if unfinished[dependent] == 0:
                    newly_ready.append(dependent)
        ready = sorted([k for k in ready if k not in chosen_set] + newly_ready,
                       key=position.__getitem__)
    return groups
