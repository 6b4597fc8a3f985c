"""A FIX client on a bare socket, for crafting what a well-behaved engine never sends:
any header, any sequence number, garbled bytes. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from tests.execute.fix.wire import as_dict, frame

from poise.execute.fix.codec import Frame, Framer, format_timestamp

WAIT = 5.0  # seconds any one expected message may take before the test fails


class HungUpError(Exception):
    """The other side closed the connection."""


class RawClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sender: str = "POISE",
        target: str = "BROKER",
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.sender = sender
        self.target = target
        self.seq = 1  # the next MsgSeqNum this client sends
        self.framer = Framer()
        self.frames: list[dict[int, str]] = []
        self.garbled = 0

    @classmethod
    async def connect(cls, port: int, sender: str = "POISE", target: str = "BROKER") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, sender, target)

    def message(
        self,
        msg_type: str,
        *fields: str,
        seq: int | None = None,
        possdup: bool = False,
        original: datetime | None = None,
        sent: datetime | None = None,
        sender: str | None = None,
    ) -> bytes:
        """A message with this client's header; ``seq`` None: the next one (counted)."""
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        now = datetime.now(UTC)
        when = format_timestamp(sent or now)
        header = [f"49={sender or self.sender}", f"56={self.target}", f"34={seq}", f"52={when}"]
        if possdup:
            header.append("43=Y")
            header.append(f"122={format_timestamp(original or sent or now)}")
        return frame(f"35={msg_type}", *header, *fields)

    async def write(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def send(self, msg_type: str, *fields: str, **header: object) -> None:
        await self.write(self.message(msg_type, *fields, **header))  # type: ignore[arg-type]

    async def logon(self, *fields: str, heartbeat: int = 30) -> dict[int, str]:
        """Log on; the broker's Logon."""
        await self.send("A", "98=0", f"108={heartbeat}", *fields)
        return await self.expect("A")

    async def order(
        self, cl_ord_id: str, *fields: str, symbol: str = "AAPL", **header: object
    ) -> None:
        await self.send(
            "D", f"11={cl_ord_id}", "1=FIRM-1", f"55={symbol}", "54=1",
            f"60={format_timestamp(datetime.now(UTC))}", "38=100", "40=1", *fields, **header,
        )  # fmt: skip

    async def receive(self, wait: float = WAIT) -> dict[int, str]:
        """The next message from the other side (``HungUpError`` if it hangs up first)."""
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), wait)
            if not data:
                raise HungUpError
            for item in self.framer.feed(data):
                if isinstance(item, Frame):
                    self.frames.append(as_dict(item.raw))
                else:
                    self.garbled += 1
        return self.frames.pop(0)

    async def expect(self, msg_type: str, wait: float = WAIT) -> dict[int, str]:
        message = await self.receive(wait)
        assert message[35] == msg_type, f"expected MsgType {msg_type}, got {message}"
        return message

    async def skip_heartbeats(self, wait: float = WAIT) -> dict[int, str]:
        """The next message that is not a Heartbeat."""
        while (message := await self.receive(wait))[35] == "0":
            pass
        return message

    async def answer(self, test_id: str, wait: float = WAIT) -> dict[int, str]:
        """The Heartbeat answering TestRequest ``test_id``, next after any heartbeats of
        the other side's own: anything else first fails the test."""
        while (message := await self.receive(wait))[35] == "0" and 112 not in message:
            pass
        assert (message[35], message.get(112)) == ("0", test_id), message
        return message

    async def closed(self, wait: float = WAIT) -> list[dict[int, str]]:
        """What came until the other side hung up (the test fails if it does not)."""
        seen = []
        try:
            while True:
                seen.append(await self.receive(wait))
        except HungUpError:
            return seen

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
