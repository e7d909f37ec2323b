"""Child processes we own: started with their output captured, reported with their last
lines when one exits, stopped in reverse order of starting.

A child's output is appended to a log file (the tests give one per child), or read from a
pipe and copied to ours, each line headed with the child's name (`make run`, where the
user watches the terminal). Either way its last lines are at hand for a failure report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

ROOT = Path(__file__).resolve().parent  # every child runs in the checkout
TAIL_LINES = 10  # a failure report quotes this many of a child's last lines


class StackError(RuntimeError):
    """The system could not start, or a child stopped on its own; the message says what to do.

    StackError
    ├── ChildExited   a child process ended (its exit code and last lines of output)
    ├── PortInUse     (stack) a port a child would listen on is taken; names the setting
    └── NotHealthy    (stack) a child did not pass its health check in time; a TimeoutError
    """


class ChildExited(StackError):
    def __init__(self, name: str, returncode: int, tail: list[str], log: Path | None) -> None:
        self.name, self.returncode, self.tail = name, returncode, tail
        super().__init__(f"{name} {_ending(returncode)}. {quote_output(tail, log)}")


def _ending(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def quote_output(tail: list[str], log: Path | None) -> str:
    """A child's last lines for a message, indented under a sentence that says where the rest is."""
    where = f" (all of it in {log})" if log else ""
    if not tail:
        return f"It wrote nothing{where}."
    return f"Its last lines of output{where}:\n" + "\n".join(f"    {line}" for line in tail)


class _Output(Protocol):
    @property
    def log(self) -> Path | None: ...

    def tail(self) -> list[str]: ...

    def silence(self) -> None: ...

    def close(self) -> None: ...


class _LogFile:
    """Output appended to a file; only what this child wrote counts (a restart appends)."""

    def __init__(self, log: Path, start: int) -> None:
        self.log = log
        self.start = start  # where this child's output begins

    def tail(self) -> list[str]:
        with open(self.log, "rb") as file:
            end = file.seek(0, os.SEEK_END)
            file.seek(max(self.start, end - 16384))  # ten lines, however long
            lines = file.read().decode(errors="replace").splitlines()
        return [line.rstrip() for line in lines if line.strip()][-TAIL_LINES:]

    def silence(self) -> None:
        pass  # nobody is watching a file

    def close(self) -> None:
        pass  # the child holds the only descriptor


class _Echo:
    """Output read from a pipe and copied to ours, each line headed with the child's name."""

    def __init__(self, name: str, pipe: IO[bytes]) -> None:
        self.log = None
        self._lines: deque[str] = deque(maxlen=TAIL_LINES)
        self._silent = False
        self._thread = threading.Thread(
            target=self._copy, args=(f"{name:>8} | ", pipe), name=f"echo-{name}", daemon=True
        )
        self._thread.start()

    def _copy(self, heading: str, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in pipe:
                line = raw.decode(errors="replace").rstrip()
                if line.strip():
                    self._lines.append(line)
                if self._silent:
                    continue
                # With our own output gone (a closed pipe) keep draining, or the child blocks.
                with contextlib.suppress(OSError, ValueError):
                    sys.stdout.write(f"{heading}{line}\n")
                    sys.stdout.flush()

    def tail(self) -> list[str]:
        self._thread.join(timeout=1)  # the child has ended: its last lines may be in flight
        return list(self._lines)

    def silence(self) -> None:
        self._silent = True

    def close(self) -> None:
        # Before we exit: a daemon thread still writing to stdout then can abort the interpreter.
        self._thread.join(timeout=1)


@dataclass
class Stack:
    """Child processes we own, stopped in reverse order of starting."""

    env: Mapping[str, str]
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _outputs: dict[subprocess.Popen[bytes], _Output] = field(default_factory=dict, repr=False)

    def start(self, name: str, command: list[str], log: Path | None = None) -> None:
        """Start `name`, its output appended to `log`, or with no log copied to our output."""
        env = {**os.environ, **self.env}
        output: _Output
        if log:
            with open(log, "ab") as file:  # the child gets its own descriptor
                start = file.seek(0, os.SEEK_END)
                process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=file, stderr=file)
            output = _LogFile(log, start)
        else:
            process = subprocess.Popen(
                command,
                env={**env, "PYTHONUNBUFFERED": "1"},  # each line as it is written, not in blocks
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert process.stdout is not None
            output = _Echo(name, process.stdout)
        self.processes.append((name, process))
        self._outputs[process] = output

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return next(p for n, p in self.processes if n == name)

    def names(self) -> list[str]:
        return [name for name, _ in self.processes]

    def describe_output(self, name: str) -> str:
        """The last lines `name` wrote, and where the rest is, for a message."""
        output = self._outputs[self.process(name)]
        return quote_output(output.tail(), output.log)

    def stop(self, name: str | None = None, *, kill: bool = False) -> None:
        for entry in [e for e in reversed(self.processes) if name in (None, e[0])]:
            _stop_process(entry[1], kill)
            self.processes.remove(entry)
            self._outputs.pop(entry[1]).close()

    def silence(self) -> None:
        """Stop copying the children's output to ours (their last lines are still kept): what
        they say while being stopped after a failure would bury the reason."""
        for output in self._outputs.values():
            output.silence()

    def check_alive(self) -> None:
        """Raise ChildExited for the first child that is no longer running."""
        for name, process in self.processes:
            if process.poll() is not None:
                output = self._outputs[process]
                raise ChildExited(name, process.returncode, output.tail(), output.log)


def _stop_process(process: subprocess.Popen[bytes], kill: bool) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
