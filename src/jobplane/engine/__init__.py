"""The engine: how a daemon gets work from the store and drives it (docs/design/engine.md).

``claimer``: the lease, reclaiming lost daemons' jobs, claiming ready work.
``intake``: claimed jobs into the processor; a submission's kick; what a stopped daemon left.
"""
