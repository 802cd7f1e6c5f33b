"""Is a host reachable? One quick probe shared by everything that may need the network.

Downloads (tiktoken's vocabulary files, Hugging Face Hub models and datasets) would otherwise spend tens of
seconds in retries before failing on a machine with no route out. A TCP connection attempt with a short
timeout answers the question at once; it runs in a daemon thread because DNS lookups have no timeout of their
own, and we simply stop waiting for the thread.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlparse


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Can a TCP connection to host:port be opened within `timeout` seconds?"""
    import socket

    result = {"ok": False}

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result["ok"]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Is the Hugging Face Hub (or the mirror in $HF_ENDPOINT) reachable?"""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    return reachable(host, endpoint.port or (80 if endpoint.scheme == "http" else 443), timeout)
