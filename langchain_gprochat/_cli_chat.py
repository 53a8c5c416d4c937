"""``gprochat chat``: an interactive conversation in the terminal.

Each line read is a question; the answer streams to stdout as it arrives and joins the
history. Ctrl-C (SIGINT) during an answer stops that answer and keeps the conversation
(the part that arrived stays in the history, as the web client keeps it); at the prompt
it only gives a fresh prompt. Ctrl-D (the end of input) leaves. The prompt ``> `` is
shown only when stdin is a terminal; with piped input the output is the answers alone,
one per line. An answer that fails is reported as one line on stderr and the
conversation goes on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from langchain_gprochat._cli import EXIT_FAILURE, EXIT_INTERRUPTED, build_model, print_error
from langchain_gprochat.errors import GPROChatError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_gprochat.chat_models import ChatGPROChat

__all__ = ["PROMPT", "STOPPED", "LineReader", "chat"]

PROMPT = "> "
"""Shown before each question when stdin is a terminal."""

STOPPED = "[answer stopped]"
"""Printed on stderr when Ctrl-C stops an answer."""

_READ_SIZE = 65536


class LineReader:
    """Lines of a file descriptor, read on a daemon thread, handed to the event loop.

    The thread reads the descriptor with ``os.read`` (not ``sys.stdin``'s buffered
    reader, whose lock a thread still blocked at interpreter exit would hold).
    ``get()`` returns the next line without its line break, or ``None`` at the end.
    """

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = loop
        self._fd = fd
        threading.Thread(target=self._run, name="gprochat-stdin", daemon=True).start()

    def _put(self, line: str | None) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, line)

    def _run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        try:
            while data := os.read(self._fd, _READ_SIZE):
                pending += decoder.decode(data)
                *lines, pending = pending.split("\n")
                for line in lines:
                    self._put(line.removesuffix("\r"))
        except OSError:
            pass
        finally:
            pending += decoder.decode(b"", final=True)
            with contextlib.suppress(RuntimeError):  # the loop closed first
                if pending:
                    self._put(pending)
                self._put(None)

    async def get(self) -> str | None:
        """The next line, or ``None`` at the end of input."""
        return await self._queue.get()


class _Conversation:
    """The history, and one answer at a time that Ctrl-C can stop."""

    def __init__(self, model: ChatGPROChat, system: str | None, out: TextIO) -> None:
        self.model = model
        self.out = out
        self.history: list[BaseMessage] = []
        self.system = system
        self.current: asyncio.Task[None] | None = None
        self.failures = 0

    def messages(self) -> list[BaseMessage]:
        from langchain_core.messages import SystemMessage

        prefix: list[BaseMessage] = [SystemMessage(self.system)] if self.system else []
        return prefix + self.history

    async def _stream(self, parts: list[str]) -> None:
        async for chunk in self.model.astream(self.messages()):
            parts.append(chunk.text)
            self.out.write(chunk.text)
            self.out.flush()

    async def ask(self, question: str) -> None:
        """Stream the answer to ``question``; a stop or a failure keeps the chat going."""
        from langchain_core.messages import AIMessage, HumanMessage

        self.history.append(HumanMessage(question))
        parts: list[str] = []
        self.current = asyncio.ensure_future(self._stream(parts))
        try:
            await self.current
        except asyncio.CancelledError:
            self._end_line()
            print(STOPPED, file=sys.stderr, flush=True)
        except GPROChatError as exc:
            self._end_line(bool(parts))
            print_error(exc)
            self.failures += 1
        else:
            self._end_line()
        finally:
            self.current = None
        if parts:
            self.history.append(AIMessage("".join(parts)))
        elif self.history and isinstance(self.history[-1], HumanMessage):
            self.history.pop()  # no answer at all: as if it had not been asked

    def _end_line(self, wrote: bool = True) -> None:
        if wrote:
            self.out.write("\n")
            self.out.flush()

    def interrupt(self) -> bool:
        """Stop the answer under way; ``False`` if there is none."""
        if self.current is None or self.current.done():
            return False
        self.current.cancel()
        return True


async def chat(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    """Run the conversation on ``stdin``/``out``; returns the exit status."""
    loop = asyncio.get_running_loop()
    interactive = stdin.isatty()
    setup = asyncio.ensure_future(build_model(args))
    conversation: _Conversation | None = None

    def on_sigint() -> None:
        if conversation is None:
            setup.cancel()
        elif not conversation.interrupt() and interactive:
            out.write("\n" + PROMPT)
            out.flush()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        try:
            model = await setup
        except asyncio.CancelledError:
            print("gprochat: interrupted", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        async with model:
            conversation = _Conversation(model, args.system, out)
            await _converse(conversation, LineReader(stdin.fileno(), loop), interactive)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    return EXIT_FAILURE if conversation.failures else 0


async def _converse(conversation: _Conversation, lines: LineReader, interactive: bool) -> None:
    out = conversation.out
    while True:
        if interactive:
            out.write(PROMPT)
            out.flush()
        line = await lines.get()
        if line is None:
            if interactive:
                out.write("\n")
                out.flush()
            return
        if line.strip():
            await conversation.ask(line)
