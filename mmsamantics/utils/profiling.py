"""Peak-memory measurement for benchmark scripts (CPU RSS and CUDA allocations), and the
parts of a benchmark run each in its own process."""
import json
import os
import resource
import subprocess
import threading
import time
from typing import Dict, List, Optional

import torch


def current_rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """``with PeakMemory() as m: ...`` -> ``m.rss_peak`` (bytes, sampled every 5 ms) and
    ``m.cuda_peak`` (bytes of ``torch.cuda.max_memory_allocated``, None without CUDA)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.rss_peak = 0
        self.cuda_peak: Optional[int] = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.rss_peak = max(self.rss_peak, current_rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> 'PeakMemory':
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.rss_peak = current_rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.rss_peak = max(self.rss_peak, current_rss_bytes())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            self.cuda_peak = torch.cuda.max_memory_allocated()


RESULT_PREFIX = 'RESULT '  # the line a measured child process reports on


def print_result(result: dict) -> None:
    """Report ``result`` (JSON-ready) from a child started by :func:`run_measured`."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_measured(cmd: List[str], what: str, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None) -> dict:
    """Run one part of a benchmark in its own process, so that its peak memory is its own;
    the dict it reported with :func:`print_result`.

    Raises:
        SystemExit: the process failed or reported nothing (its output's end is shown).
    """
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                       env=dict(os.environ, **(env or {})))
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if p.returncode or not lines:
        raise SystemExit(f'{what} failed (exit code {p.returncode}):\n{p.stdout[-2000:]}\n'
                         f'{p.stderr[-3000:]}')
    return json.loads(lines[-1][len(RESULT_PREFIX):])
