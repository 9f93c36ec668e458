"""Cancel and change priority from any client, through the store.

Who changes a job depends on who holds it (docs/design/engine.md, "Control
from any client"):

* **this daemon** (the processor tracks it): the processor changes it, as
  it always did (a waiting job is kicked out of its lock wait, a
  cooperative running op gets its cancel event);
* **nobody** (the job waits in the store's schedule): the caller changes
  the stored job by compare-and-set, and tries again if it moved meanwhile;
* **another daemon**: ``Store.request_control`` records the request; the
  owner hears of it through its store's request listener (:meth:`Control.heard`),
  applies it as the first case does and clears it. A job claimed with a
  request still pending gets it applied as it is admitted.

The answers are the same words whoever holds the job. A running op takes a
cancel if it is registered ``cancellable`` or has checked for cancellation
(``OpState.cooperative``, which the owner stores at the op's first check).
For a job another daemon holds whose op has not started, the caller waits
up to ``cancel_wait`` seconds (1 s; woken by the store's listener, never
polling) for the owner to end it and answers "canceled"; an owner slower
than that gets "will be canceled at its next turn", which it will be. An
owner that refused (the op started meanwhile and does not cooperate)
clears the request without a change to hear of: the caller sees that at
the end of its wait and refuses in the owner's words.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from .. import priorities
from ..errors import LeaseLost, StoreConflict, StoreError
from ..jobs import CANCELED_BY_REQUEST, Job, OpState, OpStatus
from ..operations import Registry
from ..stores.base import Store
from .processor import Processor

logger = logging.getLogger(__name__)

CANCEL_WAIT_S = 1.0
"""How long a cancel of a job another daemon holds waits for that daemon to end it."""

ATTEMPTS = 20
"""Compare-and-set attempts on a job that keeps moving before giving up with StoreConflict."""
UNHEARD_MAX = 4096
"""Most job ids :meth:`Control.heard` keeps for :meth:`Control.admitted` (the oldest go)."""


class Control:
    """Cancel and change priority for any job of the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        processor: Processor,
        wall: Callable[[], float],
        cancel_wait: float = CANCEL_WAIT_S,
    ) -> None:
        self._store = store
        self._registry = registry
        self._processor = processor
        self._wall = wall
        self.cancel_wait = cancel_wait
        self._applying = threading.local()
        self._waits_mutex = threading.Lock()
        self._waits: dict[int, list[threading.Event]] = {}
        """Callers of ``cancel`` waiting for the owner, by job; guarded by ``_waits_mutex``."""
        self.waits = self._waits
        """The same dict, read-only outside: empty (the common case) means nobody waits."""
        # Jobs whose request came while the processor did not track them: a
        # request committed between a claim and its admission (the claim read
        # the job before it) is applied once the job is admitted.
        self._unheard: dict[int, None] = {}
        self._unheard_lock = threading.Lock()

    def cancel(self, job_id: int) -> tuple[bool, str]:
        """Cancel a job: queued at once, waiting at its next turn, running if it cooperates.

        A job another daemon holds whose op has not started: wait up to
        ``cancel_wait`` seconds (on the store's listener) for the owner to end it.
        """
        for _ in range(ATTEMPTS):
            answer = self._processor.cancel(job_id)
            if answer is not None:
                return answer
            job = self._store.load(job_id)
            if job.is_final:
                return False, f"job {job_id} has already finished ({job.status})"
            if job.status is OpStatus.CANCELING:
                return False, f"job {job_id} is already being canceled"
            index = job.current_op()
            assert index is not None
            op = job.ops[index]
            running = op.status is OpStatus.RUNNING
            if running and not self._cooperates(op):
                return False, _not_cooperating(job_id, index, op.op)
            if job.owner is None:
                changed = job.clone()
                changed.mark_unfinished(OpStatus.CANCELED, CANCELED_BY_REQUEST, self._wall())
                if self._set(changed):
                    return True, f"job {job_id} canceled"
                continue
            if running:
                if self._store.request_control(job_id, cancel=True) is None:
                    continue  # given back meanwhile: change it directly
                return True, f"job {job_id} will be canceled at its running op's next check"
            with self._watching(job_id) as changed_event:
                if self._store.request_control(job_id, cancel=True) is None:
                    continue
                return self._owner_ends(job_id, changed_event)
        raise StoreConflict(f"job {job_id} kept changing; cancel again")

    def _owner_ends(self, job_id: int, changed: threading.Event) -> tuple[bool, str]:
        """Wait up to ``cancel_wait`` for the owner to apply a cancel; answer as it would.

        Wakes on each change of the job (``changed``, set by :meth:`changed`).
        An owner that refuses (the op started meanwhile and does not
        cooperate) clears the request without a change to hear: that shows
        only at the end of the wait.
        """
        deadline = time.monotonic() + self.cancel_wait
        while True:
            changed.clear()
            job = self._store.load(job_id)
            if job.is_final:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not changed.wait(remaining):
                job = self._store.load(job_id)
                break
        if job.is_final:
            if job.status is OpStatus.CANCELED:
                return True, f"job {job_id} canceled"
            return False, f"job {job_id} has already finished ({job.status})"
        index = job.current_op()
        assert index is not None
        op = job.ops[index]
        if op.status is OpStatus.CANCELING and op.started_at is not None:
            return True, f"job {job_id} will be canceled at its running op's next check"
        if job.requests.cancel or op.status is OpStatus.CANCELING:
            return True, f"job {job_id} will be canceled at its next turn"
        # the owner applied the request and did not cancel: it refused
        if op.status is OpStatus.RUNNING and not self._cooperates(op):
            return False, _not_cooperating(job_id, index, op.op)
        return False, f"job {job_id} was not canceled by the daemon that holds it; cancel again"

    def change_priority(self, job_id: int, priority: int) -> tuple[bool, str]:
        """Give the job's pending ops ``priority`` (overrides escalation and aging)."""
        for _ in range(ATTEMPTS):
            answer = self._processor.change_priority(job_id, priority)
            if answer is not None:
                return answer
            job = self._store.load(job_id)
            if job.is_final:
                return False, f"job {job_id} has already finished ({job.status})"
            if job.status is OpStatus.CANCELING:
                return False, f"job {job_id} is being canceled"
            pending = [
                i
                for i, op in enumerate(job.ops)
                if op.status in (OpStatus.QUEUED, OpStatus.WAITING)
            ]
            if not pending:
                return False, f"job {job_id} has no pending ops (its current op is running)"
            done = f"job {job_id} priority changed to {priorities.name_of(priority)}"
            if job.owner is None:
                changed = job.clone()
                for i in pending:
                    changed.ops[i].priority = priority
                if self._set(changed):
                    return True, done
                continue
            if self._store.request_control(job_id, priority=priority) is None:
                continue
            return True, done
        raise StoreConflict(f"job {job_id} kept changing; change its priority again")

    # -- the owner's side ---------------------------------------------------------

    def changed(self, job_id: int) -> None:
        """A store change listener: wake the callers of :meth:`cancel` waiting for this job."""
        if self._waits:  # someone waits for a job's owner (the common case: nobody)
            with self._waits_mutex:
                for event in self._waits.get(job_id, ()):
                    event.set()

    def heard(self, job_id: int) -> None:
        """A store request listener: apply the control requests of a job this daemon holds.

        Reads the job only when the processor tracks it. (Stores call request
        listeners on the thread that recorded the request, after its commit:
        never inside one of the processor's own writes.)
        """
        if self._processor.tracked(job_id) is None:
            with self._unheard_lock:
                self._unheard[job_id] = None
                if len(self._unheard) > UNHEARD_MAX:
                    del self._unheard[next(iter(self._unheard))]
            if self._processor.tracked(job_id) is None:
                return
            self.admitted(job_id)  # admitted meanwhile: the admission may not have looked
            return
        if getattr(self._applying, "job", None) == job_id:
            return  # the notification of our own clear_requests
        try:
            job = self._store.load(job_id)
        except StoreError:
            logger.exception("job %s: could not read its control requests", job_id)
            return
        self.apply(job)

    def admitted_all(self, job_ids: list[int]) -> None:
        """Claimed jobs joined the processor: apply the requests that came before they did."""
        if self._unheard:  # the common case (nothing unheard) without the lock
            for job_id in job_ids:
                self.admitted(job_id)

    def admitted(self, job_id: int) -> None:
        """A claimed job joined the processor: apply a request that came before it did."""
        if not self._unheard:  # the common case, without the lock
            return
        with self._unheard_lock:
            if job_id not in self._unheard:
                return
            del self._unheard[job_id]
        self.heard(job_id)

    def apply(self, job: Job) -> None:
        """Apply and clear ``job``'s pending requests if this daemon holds it as stored."""
        requests = job.requests
        held = self._processor.tracked(job.id)
        if not requests.pending or held is None:
            return
        if (held.owner, held.fence) != (job.owner, job.fence):
            return
        self._applying.job = job.id
        try:
            if requests.cancel:
                self._processor.cancel(job.id)
            if requests.priority is not None:
                self._processor.change_priority(job.id, requests.priority)
            self._store.clear_requests(job, requests.serial)
        except LeaseLost:
            pass  # the job is not ours any more: its next owner applies them
        except StoreError:
            logger.exception("job %s: applying its control requests failed", job.id)
        finally:
            self._applying.job = None

    # -- helpers --------------------------------------------------------------------

    def _cooperates(self, op: OpState) -> bool:
        """A running op that takes a cancel: registered ``cancellable``, or it checked."""
        if op.cooperative:
            return True
        return op.op in self._registry and self._registry.get(op.op).cancellable

    @contextlib.contextmanager
    def _watching(self, job_id: int) -> Iterator[threading.Event]:
        """An event set at each change of the job the store tells of, while in the block."""
        event = threading.Event()
        with self._waits_mutex:
            self._waits.setdefault(job_id, []).append(event)
        try:
            yield event
        finally:
            with self._waits_mutex:
                events = self._waits[job_id]
                events.remove(event)
                if not events:
                    del self._waits[job_id]

    def _set(self, job: Job) -> bool:
        """Commit a change of an unowned job; False if it moved meanwhile (claimed, say)."""
        try:
            self._store.save(job)
        except StoreConflict:
            return False
        return True


def _not_cooperating(job_id: int, index: int, op: str) -> str:
    return (
        f"job {job_id} is no longer waiting in the queue: op {index} "
        f"({op}) is running and does not check for cancellation"
    )
