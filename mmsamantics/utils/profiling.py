"""Peak-memory measurement for benchmark scripts (CPU RSS and CUDA allocations)."""
import resource
import threading
import time
from typing import Optional

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
