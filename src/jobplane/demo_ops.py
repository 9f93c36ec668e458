"""A small simulated cluster for the demonstration: ops built on delays and real locks.

Load it in a daemon with ``--ops jobplane.demo_ops``. Durations scale with
``JOBPLANE_DEMO_SPEED`` (default 1.0; 0.1 runs ten times faster).
"""

from __future__ import annotations

import os

import pydantic

from .operations import OpContext, Registry, shared

SPEED = float(os.environ.get("JOBPLANE_DEMO_SPEED", "1.0"))


class InstanceParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    instance: str
    node: str


class MigrateParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    instance: str
    source: str
    target: str


class NodeParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    node: str


class VerifyParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    seconds: float = pydantic.Field(0.5, ge=0, le=60)


def _work(ctx: OpContext, seconds: float, what: str) -> None:
    ctx.log(what)
    ctx.sleep(seconds * SPEED)


def instance_start(ctx: OpContext, params: InstanceParams) -> dict[str, str]:
    """Boot an instance on its node."""
    _work(ctx, 0.15, f"starting {params.instance} on {params.node}")
    return {"instance": params.instance, "state": "running"}


def instance_stop(ctx: OpContext, params: InstanceParams) -> dict[str, str]:
    """Shut an instance down."""
    _work(ctx, 0.1, f"stopping {params.instance}")
    return {"instance": params.instance, "state": "stopped"}


def instance_migrate(ctx: OpContext, params: MigrateParams) -> dict[str, str]:
    """Live-migrate an instance between two nodes (locks both nodes)."""
    _work(ctx, 0.4, f"migrating {params.instance} {params.source} -> {params.target}")
    return {"instance": params.instance, "node": params.target}


def node_evacuate(ctx: OpContext, params: NodeParams) -> dict[str, str]:
    """Move every instance off a node (holds the node exclusively for a while)."""
    _work(ctx, 2.5, f"evacuating {params.node}")
    return {"node": params.node, "state": "empty"}


def node_health(ctx: OpContext, params: NodeParams) -> dict[str, str]:
    """Read a node's health (a shared lock on the node)."""
    _work(ctx, 0.05, f"checking {params.node}")
    return {"node": params.node, "health": "ok"}


def cluster_verify(ctx: OpContext, params: VerifyParams) -> dict[str, str]:
    """Check the whole cluster: takes the big lock exclusively."""
    _work(ctx, params.seconds, "verifying the cluster")
    return {"cluster": "consistent"}


def register(registry: Registry) -> None:
    registry.add(
        "instance.start",
        instance_start,
        locks=lambda p: {"instance": [p.instance], "node": shared([p.node])},
    )
    registry.add(
        "instance.stop",
        instance_stop,
        locks=lambda p: {"instance": [p.instance], "node": shared([p.node])},
    )
    registry.add(
        "instance.migrate",
        instance_migrate,
        locks=lambda p: {"instance": [p.instance], "node": [p.source, p.target]},
    )
    registry.add("node.evacuate", node_evacuate, locks=lambda p: {"node": [p.node]})
    registry.add("node.health", node_health, locks=lambda p: {"node": shared([p.node])})
    registry.add("cluster.verify", cluster_verify, big_lock="exclusive")
