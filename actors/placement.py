"""Creating the model actor replicas that an ``ActorPlan`` describes (the Ray side of actors.resources).

Replica 0 keeps the plain name (``extractor``, ``embedder``), the others get ``-1``, ``-2``...,
so any process can find every replica by name (``find_replicas``) and a second process that
starts the runtime attaches to the same actors. A replica that needs a placement group
(vLLM's ray executor) gets a named one, created once and reused.
"""

from __future__ import annotations

from typing import Any

import anyio
import ray
from ray.util.placement_group import get_placement_group, placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from actors.resources import ActorPlan
from runtime.errors import BackendUnavailable


def replica_name(kind: str, index: int) -> str:
    return kind if index == 0 else f"{kind}-{index}"


def find_replicas(kind: str, namespace: str) -> list[Any]:
    """Handles of every running replica of ``kind``, in index order."""
    handles: list[Any] = []
    while True:
        try:
            handles.append(ray.get_actor(replica_name(kind, len(handles)), namespace=namespace))
        except ValueError:
            if not handles:
                raise
            return handles


async def _placement_group(name: str, plan: ActorPlan, namespace: str, ready_s: float) -> Any:
    try:
        group = get_placement_group(f"{namespace}-{name}")
    except ValueError:
        group = placement_group(plan.bundles, strategy=plan.strategy, name=f"{namespace}-{name}")
    with anyio.move_on_after(ready_s):
        await group.ready()
        return group
    raise BackendUnavailable(f"the placement group of {name} ({plan.bundles}, {plan.strategy}) was not placed within "
                             f"{ready_s}s: the Ray cluster lacks the GPUs", backend="llm" if "extractor" in name
                             else "embedder")


async def start_replicas(actor_class: Any, plan: ActorPlan, namespace: str, args: tuple[Any, ...],
                         ready_s: float = 120.0, **options: Any) -> list[Any]:
    handles = []
    for index in range(plan.replicas):
        name = replica_name(plan.kind, index)
        extra: dict[str, Any] = {}
        if plan.bundles:
            group = await _placement_group(name, plan, namespace, ready_s)
            extra["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_bundle_index=0)
        handles.append(actor_class.options(name=name, namespace=namespace, get_if_exists=True, **plan.options,
                                           **extra, **options).remote(*args))
    return handles


def remove_placement_groups(plan: ActorPlan, namespace: str) -> None:
    if not plan.bundles:
        return
    from ray.util import remove_placement_group

    for index in range(plan.replicas):
        try:
            remove_placement_group(get_placement_group(f"{namespace}-{replica_name(plan.kind, index)}"))
        except ValueError:
            pass
