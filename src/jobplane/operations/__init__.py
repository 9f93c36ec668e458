"""The operation registry: op name -> handler, parameter schema, lock needs.

An op is a Python function ``handler(ctx, params) -> result``. Its
parameters are a pydantic model, validated when a job is *submitted*, so an
invalid job is refused before it is queued. Its lock needs are a function of
the validated parameters, returning ``{level: names}``; plain lists mean
exclusive locks, ``shared([...])`` shared ones, and ``ALL`` every lock of a
level. Every op also holds the big lock (the single lock of the outermost
level): shared, or exclusive for an op registered with
``big_lock="exclusive"``, which then has the whole system to itself.

::

    registry = Registry()

    class MigrateParams(BaseModel):
        instance: str
        source: str
        target: str

    @registry.op("instance.migrate",
                 locks=lambda p: {"instance": [p.instance], "node": [p.source, p.target]})
    def migrate(ctx: OpContext, params: MigrateParams) -> dict[str, str]:
        ctx.log(f"moving {params.instance} to {params.target}")
        return {"node": params.target}

The package: ``spec`` (what an op is: ``OpDef``, ``OpContext``, lock needs),
``registry`` (``Registry``), ``builtin`` (the ops every registry has).
"""

from ..errors import OpCanceled as OpCanceled
from ..locking import ALL as ALL
from .registry import DEFAULT_LEVELS as DEFAULT_LEVELS
from .registry import Registry as Registry
from .spec import Handler as Handler
from .spec import LockNeed as LockNeed
from .spec import LockSpec as LockSpec
from .spec import OpContext as OpContext
from .spec import OpDef as OpDef
from .spec import SharedNames as SharedNames
from .spec import shared as shared
