"""Plumbing between stages: bounded queues, thread hand-offs and subprocess filters."""

from __future__ import annotations

import contextlib
import io
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lifeboat.pipeline.checksum import Readable, Writable
from lifeboat.storage.base import ObjectInfo, Storage
from lifeboat.util.proc import StderrCollector

CHUNK = 1 << 20
QUEUE_DEPTH = 8  # chunks in flight between two threads: bounds memory at about 8 MiB


class Cancelled(Exception):
    """The other side of a hand-off stopped; this side stops too."""


_DONE = object()


class ChunkQueue:
    """A writable whose bytes come out, in chunks of about CHUNK bytes, of an iterator
    running in another thread. Bounded, so a slow consumer slows the producer down."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._buffer = bytearray()
        self.cancelled = threading.Event()

    def _put(self, item: object) -> None:
        while True:
            if self.cancelled.is_set():
                raise Cancelled("the consumer stopped")
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> int:
        if not self._buffer and len(data) >= CHUNK and isinstance(data, bytes):
            self._put(data)  # large enough already (see Gathering): no copy
            return len(data)
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def finish(self, error: BaseException | None = None) -> None:
        if error is None and self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        self._put(error if error is not None else _DONE)

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item


class Gathering:
    """A writable passing what it gets on to sink in pieces of about CHUNK bytes (age
    writes 64 KiB ones): each stage after it then handles a sixteenth of the pieces, and
    the queues to storage take them without copying them again. Call finish() at the end."""

    def __init__(self, sink: Writable) -> None:
        self._sink = sink
        self._pieces: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._pieces.append(data if isinstance(data, bytes) else bytes(data))
        self._size += len(data)
        if self._size >= CHUNK:
            self._pass_on()
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        if self._pieces:
            self._pass_on()

    def _pass_on(self) -> None:
        pieces, self._pieces, self._size = self._pieces, [], 0
        self._sink.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))


def write_from_producer(
    storage: Storage, key: str, producer: Callable[[Writable], None]
) -> ObjectInfo:
    """Run producer(writer) in a thread and store what it writes under key.

    A failure on either side stops both, and the first failure is the one raised."""
    hand_off = ChunkQueue()

    def run() -> None:
        try:
            producer(hand_off)
        except Cancelled:
            return
        except BaseException as exc:
            try:
                hand_off.finish(exc)
            except Cancelled:
                pass
            return
        try:
            hand_off.finish()
        except Cancelled:
            pass

    thread = threading.Thread(target=run, name=f"produce:{key}", daemon=True)
    thread.start()
    try:
        info = storage.write(key, hand_off.chunks())
    except BaseException:
        # Either the producer failed first (storage re-raises that very error from the
        # chunk iterator) or storage failed (full disk...) and the producer must stop.
        hand_off.cancelled.set()
        thread.join()
        raise
    thread.join()
    return info


class _Tee:
    """A writable copying everything to several ChunkQueues; a queue whose consumer
    stopped is dropped, and only when every one stopped does the producer stop."""

    def __init__(self, queues: list[ChunkQueue]) -> None:
        self.live = list(queues)

    def write(self, data: bytes) -> int:
        for hand_off in list(self.live):
            try:
                hand_off.write(data)
            except Cancelled:
                self.live.remove(hand_off)
        if not self.live:
            raise Cancelled("every consumer stopped")
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def finish(self, error: BaseException | None = None) -> None:
        for hand_off in list(self.live):
            with contextlib.suppress(Cancelled):
                hand_off.finish(error)


def write_to_all(
    storages: Sequence[Storage], key: str, producer: Callable[[Writable], None]
) -> list[ObjectInfo | BaseException]:
    """write_from_producer into several storages at once: the producer runs once and each
    storage gets the same bytes on a thread of its own, as fast as the slowest. A storage
    that fails is dropped and its error returned in its place, while the others complete.
    A failure of the producer itself is raised (every storage then stored nothing)."""
    queues = [ChunkQueue() for _ in storages]
    tee = _Tee(queues)
    produced: list[BaseException] = []

    def produce() -> None:
        try:
            producer(tee)
        except Cancelled:
            return
        except BaseException as exc:
            produced.append(exc)
            tee.finish(exc)
            return
        tee.finish()

    results: list[ObjectInfo | BaseException] = [Cancelled("not written")] * len(storages)

    def store(index: int) -> None:
        try:
            results[index] = storages[index].write(key, queues[index].chunks())
        except BaseException as exc:
            queues[index].cancelled.set()
            results[index] = exc

    threads = [threading.Thread(target=produce, name=f"produce:{key}", daemon=True)]
    threads += [
        threading.Thread(target=store, args=(i,), name=f"store:{i}:{key}", daemon=True)
        for i in range(len(storages))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        for hand_off in queues:
            hand_off.cancelled.set()
        raise
    if produced:
        raise produced[0]
    return results


def pump(source: Readable, sink: Writable, chunk: int = CHUNK) -> int:
    total = 0
    while True:
        data = source.read(chunk)
        if not data:
            return total
        sink.write(data)
        total += len(data)


PIPE_SIZE = 1 << 20


def widen_pipe(fd: int) -> None:
    """Give a pipe 1 MiB instead of 64 KiB, so that its writer runs on while the reader
    hashes and compresses: with the default size the two take turns, and a backup ran
    about 40% slower. Where the system refuses, the pipe just stays as it is."""
    import fcntl

    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


class ProcessOutput:
    """A process's stdout as a readable. At the end it raises if the process failed, so
    that a partial output never looks complete to the stages after it."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], tool: str) -> None:
        self.tool = tool
        self.process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env)
        )
        assert isinstance(self.process.stdout, io.BufferedReader)
        assert self.process.stderr is not None
        self._stdout = self.process.stdout
        widen_pipe(self._stdout.fileno())
        self.stderr = StderrCollector(self.process.stderr)
        self.stderr.start()

    def read(self, size: int = -1) -> bytes:
        return self._finished_unless(self._stdout.read(size))

    def _read_available(self, size: int = -1) -> bytes:
        """Up to size bytes, as many as the pipe holds now (at least one, but for the end)."""
        return self._finished_unless(self._stdout.read1(size))

    def _finished_unless(self, data: bytes) -> bytes:
        if not data:
            returncode = self.process.wait()
            self.stderr.join()
            if returncode != 0:
                from lifeboat.errors import ToolError

                detail = self.stderr.error_line() or f"exit {returncode}"
                raise ToolError(f"{self.tool} failed: {detail}")
        return data

    def readable(self) -> bool:
        return True

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class StoppedReading(Exception):
    """The process read what it needed and exited 0 (with discard_rest=False)."""


class ProcessInput:
    """A process reading from its stdin, as a writable.

    A process may stop reading before the end (pg_restore --list once it has the table of
    contents, pg_restore --use-list once it has its entries). Then what follows is
    discarded (so the caller can still check the checksums of the whole stream), or with
    discard_rest=False StoppedReading is raised so the caller can stop early. A process
    that stopped because it failed raises `failed()` at once."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        keep_stdout: bool = False,
        discard_rest: bool = True,
        stdout: IO[bytes] | None = None,
    ) -> None:
        """`stdout`, when given, receives the process's output directly (another
        process's stdin, say) instead of it being kept or discarded."""
        self._discard_rest = discard_rest
        self.program = Path(command[0]).name
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=stdout or (subprocess.PIPE if keep_stdout else subprocess.DEVNULL),
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
        )
        assert self.process.stdin is not None and self.process.stderr is not None
        self._stdin = self.process.stdin
        self.stopped_reading = False
        self.stderr = StderrCollector(self.process.stderr)
        self.stderr.start()
        self.stdout: StderrCollector | None = None
        if keep_stdout:
            assert self.process.stdout is not None
            self.stdout = StderrCollector(self.process.stdout, keep=None)
            self.stdout.start()

    def failed(self) -> Exception:
        """The error to raise when the process exits non-zero; subclasses say it better."""
        from lifeboat.errors import ToolError

        return ToolError(f"{self.program} failed: {self.failure()}")

    def failure(self) -> str:
        return self.stderr.error_line() or f"exit {self.process.returncode}"

    def write(self, data: bytes) -> int:
        if not self.stopped_reading:
            try:
                self._stdin.write(data)
            except BrokenPipeError:
                self._stopped()
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        if not self.stopped_reading:
            try:
                self._stdin.flush()
            except BrokenPipeError:
                self._stopped()

    def _stopped(self) -> None:
        self.stopped_reading = True
        if self.process.wait() != 0:
            self.stderr.join()
            raise self.failed()
        if not self._discard_rest:
            raise StoppedReading()

    def finish(self) -> None:
        """Close stdin, wait, and raise failed() unless the process exited 0."""
        try:
            self._stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        returncode = self.process.wait()
        self.stderr.join()
        if self.stdout is not None:
            self.stdout.join()
        if returncode != 0:
            raise self.failed()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class FilterResult:
    returncode: int
    stderr: StderrCollector


def filter_through(
    command: Sequence[str],
    source: Readable,
    sink: Writable | None,
    env: Mapping[str, str] | None = None,
) -> FilterResult:
    """Feed source into a process's stdin from a thread and copy its stdout into sink.

    An error reading source is re-raised here after the process has been stopped."""
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if sink is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
    )
    assert process.stdin is not None and process.stderr is not None
    stderr = StderrCollector(process.stderr)
    stderr.start()
    feed_error: list[BaseException] = []
    stdin = process.stdin

    def feed() -> None:
        try:
            pump(source, stdin)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the process stopped reading; its exit status says why
        except BaseException as exc:
            feed_error.append(exc)
            process.kill()
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        if sink is not None:
            assert process.stdout is not None
            pump(process.stdout, sink)
    except BaseException:
        process.kill()
        feeder.join()
        process.wait()
        raise
    feeder.join()
    returncode = process.wait()
    stderr.join()
    if feed_error:
        raise feed_error[0]
    return FilterResult(returncode, stderr)


class HandOff:
    """A writable passing what it gets to sink on a thread of its own, so that the stage
    writing into it and the sink's work run on two cores (decompression on one, hashing
    and writing the plaintext out on the other). The chunks are handed over as they are,
    not copied: whoever writes here must not reuse a buffer it passed (bytes never are)."""

    DEPTH = 16

    def __init__(self, sink: Writable) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=self.DEPTH)
        self._sink = sink
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hand-off", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _DONE or self._stopped.is_set():
                    return
                assert isinstance(item, (bytes, bytearray, memoryview))
                self._sink.write(bytes(item) if not isinstance(item, bytes) else item)
        except BaseException as exc:
            self._error = exc
            self._stopped.set()
            with contextlib.suppress(queue.Empty):
                while True:  # let a blocked writer go
                    self._queue.get_nowait()

    def _put(self, item: object) -> None:
        while True:
            if self._stopped.is_set():
                if self._error is not None:
                    raise self._error
                raise Cancelled("the hand-off stopped")
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> int:
        self._put(data)
        return len(data)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        """Wait until sink has everything; raise what it raised."""
        with contextlib.suppress(Cancelled):
            self._put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop the sink's thread without waiting for what is queued."""
        self._stopped.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_DONE)
        self._thread.join()
