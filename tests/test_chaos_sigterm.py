"""make chaos stopped by SIGTERM while it starts its system leaves no process behind.

The system starts in a thread (its health checks block), so a SIGTERM then ends the event
loop while that thread goes on starting services; what it starts must still be stopped.
The run here starts stand-ins (`sleep`) for its services and is sent SIGTERM once the first
is up; that first start then waits, as on its health check, until the test says the signal
is sent, so the others start after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import stack

_RUN = """
import sys
from pathlib import Path
import chaos.__main__, chaos.run, chaos.system, stack

pids, signalled = Path(sys.argv[1]), Path(sys.argv[3])
chaos.run.upgrade_to_head = lambda url: None

def start(self, name):
    first = not pids.exists()
    self.processes.start(name, ["sleep", "300"], self.work / f"{name}.log")
    with pids.open("a") as file:
        file.write(f"{self.processes.process(name).pid}\\n")
    if first:  # as on its health check, until the SIGTERM has been sent
        stack.wait_until(signalled.exists, "the test's SIGTERM")

chaos.system.ChaosSystem.start = start
sys.argv = ["chaos", "--database", "sqlite", "--work-dir", sys.argv[2]]
chaos.__main__.main()
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_while_chaos_starts_its_system_stops_every_process_it_started(
    tmp_path: Path,
) -> None:
    pids, signalled = tmp_path / "pids", tmp_path / "signalled"
    run = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(pids), str(tmp_path / "work"), str(signalled)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    started: list[int] = []
    try:
        stack.wait_until(lambda: pids.exists() and pids.read_text().strip() != "", "a service up")
        run.send_signal(signal.SIGTERM)
        signalled.touch()
        output, _ = run.communicate(timeout=30)
        started = [int(line) for line in pids.read_text().split()]
        assert b"chaos: stopped" in output, output.decode(errors="replace")
        assert len(started) == 4  # the thread went on starting the rest
        assert [pid for pid in started if _running(pid)] == []
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in started:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
