"""A small simulated cluster for the browser tests: realistic ops whose long steps a
test holds open with gates (events), so what the page shows is known, not timed."""

from __future__ import annotations

import threading

import pydantic

from jobplane.operations import OpContext, Registry, shared

TIMEOUT = 30.0  # no gate stays closed longer; a test that forgets one still ends


class Instance(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    instance: str = pydantic.Field(description="the instance's name")
    node: str = pydantic.Field(description="the node it runs on")
    seconds: float = pydantic.Field(0.2, ge=0, le=60, description="how long it takes")


class Migrate(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    instance: str
    source: str
    target: str
    seconds: float = pydantic.Field(0.4, ge=0, le=60)


class Node(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    node: str
    seconds: float = pydantic.Field(0.1, ge=0, le=60)


class Verify(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    seconds: float = pydantic.Field(0.5, ge=0, le=60)
    deep: bool = pydantic.Field(False, description="also check every disk")


class Cluster:
    """The registry of the ops, and the gates that hold them.

    ``hold(key)`` before an op with that key runs makes it log a progress line
    every ``tick`` seconds until ``release(key)``; keys are like
    ``"evacuate n1"``, ``"start web3"``, ``"migrate web1"``, ``"health n2"``.
    """

    def __init__(self, tick: float = 0.25) -> None:
        self.tick = tick
        self._mutex = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.registry = Registry()
        r = self.registry
        r.add("instance.start", self._start, locks=_instance_locks, cancellable=True)
        r.add("instance.stop", self._stop, locks=_instance_locks, cancellable=True)
        r.add(
            "instance.migrate",
            self._migrate,
            locks=lambda p: {"instance": [p.instance], "node": [p.source, p.target]},
            cancellable=True,
        )
        r.add("node.evacuate", self._evacuate, locks=lambda p: {"node": [p.node]}, cancellable=True)
        r.add("node.health", self._health, locks=lambda p: {"node": shared([p.node])})
        r.add("cluster.verify", self._verify, big_lock="exclusive")

    def hold(self, key: str) -> None:
        with self._mutex:
            self._gates[key] = threading.Event()
            self.started[key] = threading.Event()

    def release(self, key: str) -> None:
        with self._mutex:
            gate = self._gates.pop(key, None)
        if gate is not None:
            gate.set()

    def release_all(self) -> None:
        with self._mutex:
            gates, self._gates = self._gates, {}
        for gate in gates.values():
            gate.set()

    def wait_started(self, key: str, timeout: float = TIMEOUT) -> None:
        assert self.started[key].wait(timeout), f"{key} did not start within {timeout} s"

    def _work(self, ctx: OpContext, key: str, seconds: float, progress: str) -> None:
        with self._mutex:
            gate = self._gates.get(key)
            started = self.started.get(key)
        if gate is None:
            ctx.sleep(seconds)
            return
        assert started is not None
        started.set()
        step = 0
        while not gate.wait(self.tick):
            step += 1
            ctx.log(f"{progress} ({step})")
            ctx.check_cancel()
            if step * self.tick > TIMEOUT:
                raise TimeoutError(f"{key} was held for more than {TIMEOUT} s")

    def _start(self, ctx: OpContext, p: Instance) -> dict[str, str]:
        """Boot an instance on its node."""
        ctx.log(f"starting {p.instance} on {p.node}")
        self._work(ctx, f"start {p.instance}", p.seconds, f"waiting for {p.instance} to boot")
        ctx.log(f"{p.instance} is up")
        return {"instance": p.instance, "state": "running"}

    def _stop(self, ctx: OpContext, p: Instance) -> dict[str, str]:
        """Shut an instance down."""
        ctx.log(f"stopping {p.instance}")
        self._work(ctx, f"stop {p.instance}", p.seconds, f"waiting for {p.instance} to stop")
        return {"instance": p.instance, "state": "stopped"}

    def _migrate(self, ctx: OpContext, p: Migrate) -> dict[str, str]:
        """Live-migrate an instance between two nodes (locks both nodes)."""
        ctx.log(f"migrating {p.instance} from {p.source} to {p.target}")
        self._work(ctx, f"migrate {p.instance}", p.seconds, "copying memory")
        return {"instance": p.instance, "node": p.target}

    def _evacuate(self, ctx: OpContext, p: Node) -> dict[str, str]:
        """Move every instance off a node (holds the node exclusively)."""
        ctx.log(f"evacuating {p.node}")
        self._work(ctx, f"evacuate {p.node}", p.seconds, f"moving instances off {p.node}")
        return {"node": p.node, "state": "empty"}

    def _health(self, ctx: OpContext, p: Node) -> dict[str, str]:
        """Read a node's health (a shared lock on the node)."""
        ctx.log(f"checking {p.node}")
        self._work(ctx, f"health {p.node}", p.seconds, "reading sensors")
        return {"node": p.node, "health": "ok"}

    def _verify(self, ctx: OpContext, p: Verify) -> dict[str, str]:
        """Check the whole cluster (takes the big lock exclusively)."""
        ctx.log("verifying the cluster" + (" and every disk" if p.deep else ""))
        self._work(ctx, "verify", p.seconds, "comparing configurations")
        return {"cluster": "consistent"}


def _instance_locks(p: Instance) -> dict[str, object]:
    return {"instance": [p.instance], "node": shared([p.node])}


def op(name: str, **params: object) -> dict[str, object]:
    return {"op": name, "params": params}
