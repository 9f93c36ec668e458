"""The engine: how a daemon gets work from the store and drives it (docs/design/engine.md).

``claimer``: the lease, reclaiming lost daemons' jobs, claiming ready work.
``intake``: claimed jobs into the processor; a submission's kick; what a stopped daemon left.
``control``: cancel and change priority for any job, directly or through its owner.
``processor``: ``Processor``, the turn of one job, composing the parts below.
``state``: ``EngineState`` (the tracked jobs), ``Active``, ``Where``, ``Observer``.
``lockwait``: locks level by level, parking, attempt timeouts and escalation.
``run``: commit an op's start, run its handler, record its outcome.
``commit``: compare-and-set saves, retrying refused writes, dropping a lost job.
``deps``: a job's dependencies, checked at its first turn.
``cancel``, ``reprioritise``: cancel, change priority and age a tracked job.
``snapshot``: what the engine knows of a tracked job, for ``explain``.
"""
