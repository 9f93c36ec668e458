"""One exception tree for everything jobplane raises on purpose.

::

    JobplaneError
    ├── ValidationError          bad input: unknown op, invalid params, bad priority ...
    │   └── InvalidPriority
    ├── JobNotFound              no job with this id
    ├── OpNotFound               no op registered under this name
    ├── DependencyError          self, unknown or forward dependency
    ├── QueueFull                hard limit of unarchived jobs reached
    ├── QueueDrained             the drain flag is set
    ├── ShuttingDown             the daemon is stopping: no new submissions or waits
    ├── TooManyWaits             the daemon holds as many open waits as it may
    ├── ListenError              the daemon cannot listen on its address (e.g. in use)
    ├── JobStateError            the job is in a state that does not allow this
    ├── WaitTimeout              a wait ended before the job did (also a TimeoutError)
    ├── NoSuchTask               no queued worker-pool task has this id
    ├── OpCanceled               the job was canceled while an op ran (raised inside the op)
    ├── LockError                misuse of a lock (re-entry, level order, deleted lock)
    ├── StoreError               the store failed (driver errors are translated to this)
    │   ├── StoreLocked          another daemon holds this store
    │   └── StoreConflict        the job changed since it was read (version check failed)
    │       └── LeaseLost        this daemon no longer owns the job (lease ended, job reclaimed)
    ├── AuthError                missing or unknown token
    │   └── Forbidden            the token's role does not allow this
    └── DaemonUnavailable        the client could not reach a daemon

The class docstring is the default message; the HTTP layer maps each class
to a status code and an error ``code`` in one table. A message that repeats
what a user sent shows it with :func:`shown`, cut to ``SHOWN`` characters.
"""

from __future__ import annotations

from typing import ClassVar


class JobplaneError(Exception):
    """jobplane failed."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ValidationError(JobplaneError):
    """The request is not valid."""

    code = "invalid_request"


class InvalidPriority(ValidationError):
    """Priority must be an integer from -20 to 19 or one of high, normal, low."""

    code = "invalid_priority"


class JobNotFound(JobplaneError):
    """No job with this id exists."""

    code = "job_not_found"


class OpNotFound(ValidationError):
    """No operation is registered under this name."""

    code = "op_not_found"


class DependencyError(ValidationError):
    """A dependency names an unknown job or the job itself."""

    code = "invalid_dependency"


class QueueFull(JobplaneError):
    """The queue holds as many unarchived jobs as it may; archive some first."""

    code = "queue_full"


class QueueDrained(JobplaneError):
    """The queue is drained: new submissions are refused until it is undrained."""

    code = "queue_drained"


class ShuttingDown(JobplaneError):
    """The daemon is stopping: it takes no new submissions or waits."""

    code = "shutting_down"


class TooManyWaits(JobplaneError):
    """The daemon holds as many open waits as it may; try again later."""

    code = "too_many_waits"


class ListenError(JobplaneError):
    """The daemon cannot listen on its address."""

    code = "cannot_listen"


class JobStateError(JobplaneError):
    """The job is not in a state that allows this."""

    code = "job_state"


class WaitTimeout(JobplaneError, TimeoutError):
    """The job did not finish within the time given."""

    code = "wait_timeout"


class NoSuchTask(JobplaneError):
    """No queued task in the worker pool has this id."""

    code = "no_such_task"


class OpCanceled(JobplaneError):
    """The job was canceled while this op was running."""

    code = "canceled"


class LockError(JobplaneError):
    """The lock cannot be used this way."""

    code = "lock_error"


class StoreError(JobplaneError):
    """The job store failed."""

    code = "store_error"


class StoreLocked(StoreError):
    """Another daemon is already using this store."""

    code = "store_locked"


class StoreConflict(StoreError):
    """The job was changed by someone else since it was read."""

    code = "store_conflict"


class LeaseLost(StoreConflict):
    """This daemon no longer owns the job: its lease ended or another daemon took the job over."""

    code = "lease_lost"


class AuthError(JobplaneError):
    """A valid token is required."""

    code = "unauthorized"


class Forbidden(AuthError):
    """This token may not do that."""

    code = "forbidden"


class DaemonUnavailable(JobplaneError):
    """Could not reach the jobplane daemon."""

    code = "daemon_unavailable"


SHOWN = 200
"""The most characters of a user's input that a message repeats."""


def shown(value: object) -> str:
    """``repr(value)`` for a message, cut to about ``SHOWN`` characters.

    So that a 100,000-character name does not come back whole in its error.
    """
    text = repr(value)
    if len(text) <= SHOWN:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, (str, bytes)) else ""
    return f"{text[:SHOWN]}...{size}"
