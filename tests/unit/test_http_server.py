"""The daemon's HTTP protocol sends the writes of one turn of the event loop at once."""

from __future__ import annotations

import asyncio

from jobplane.http.server import _Coalescing


class Recording:
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "a write after close"
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


def test_the_writes_of_one_turn_go_out_as_one_once_the_turn_ends() -> None:
    async def scenario() -> list[list[bytes]]:
        real = Recording()
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
        transport.write(b'{"id":1}')
        seen = [list(real.sent)]
        await asyncio.sleep(0)
        seen.append(list(real.sent))
        transport.write(b"next")
        await asyncio.sleep(0)
        seen.append(list(real.sent))
        return seen

    during, after, next_turn = asyncio.run(scenario())
    assert during == []
    assert after == [b'HTTP/1.1 201 Created\r\n\r\n{"id":1}']
    assert next_turn == [*after, b"next"]


def test_close_sends_what_is_gathered_first_and_the_rest_is_the_real_transports() -> None:
    async def scenario() -> Recording:
        real = Recording()
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"last answer")
        transport.close()
        assert transport.is_closing()
        assert transport.get_extra_info("peername") == "info peername"
        await asyncio.sleep(0)  # the send scheduled by the write finds nothing left
        return real

    real = asyncio.run(scenario())
    assert real.sent == [b"last answer"] and real.closed


def test_a_large_answer_is_sent_as_soon_as_the_limit_is_gathered() -> None:
    async def scenario() -> list[int]:
        real = Recording()
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        chunk = b"x" * (_Coalescing.GATHER_LIMIT // 2)
        for _ in range(5):
            transport.write(chunk)
        sizes = [len(data) for data in real.sent]  # before the turn ends
        await asyncio.sleep(0)
        return [*sizes, len(real.sent[-1])]

    assert asyncio.run(scenario()) == [
        _Coalescing.GATHER_LIMIT,
        _Coalescing.GATHER_LIMIT,
        _Coalescing.GATHER_LIMIT // 2,
    ]
