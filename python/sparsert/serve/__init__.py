"""Adapters that serve a `.sprt` model from existing serving engines; no server of our own.

    from sparsert.serve import ray as sparsert_ray          # Ray Serve: pip install 'sparsert[serve]'
    handle = sparsert_ray.start("net.sprt", replicas=2)     # HTTP on 127.0.0.1:8000
    from sparsert.serve import triton                       # Triton: a Python-backend model repository
    triton.export("net.sprt", "repo/", max_batch_size=32)

`sparsert.serve.ray` imports Ray; `sparsert.serve.triton` needs nothing beyond sparsert to write the
repository. What both share (the per-request check, one `Model.run` per batch, the default maximum
batch) is here and imports neither.
"""

from __future__ import annotations

import os

from ._batching import InputError, Signature, TensorSpec, choose_max_batch, run_batch


# Ray's dashboard process, which starts even with include_dashboard=False (to run its usage-stats module),
# probes cloud metadata addresses (169.254.169.254, metadata.google.internal) at startup whatever the
# usage-stats setting; an HTTP proxy on a closed loopback port makes those requests fail at once, locally.
_CLOSED_LOOPBACK_PROXY = "http://127.0.0.1:9"
_LOOPBACK = "127.0.0.1,localhost,::1"


def loopback_ray_env() -> dict[str, str]:
    """The environment that keeps a Ray cluster started locally from this process on this machine: Ray
    addresses its own processes on 127.0.0.1 (instead of the machine's network address), sends no usage
    statistics, and its outgoing HTTP other than to loopback goes to a closed loopback port. Variables
    already set are left out. Not for a driver that joins a multi-node cluster, whose nodes must reach
    each other."""
    wanted = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's switch for a node on 127.0.0.1
              "RAY_USAGE_STATS_ENABLED": "0"}
    proxies = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")
    if not any(os.environ.get(name) for name in proxies):
        wanted.update({name: _CLOSED_LOOPBACK_PROXY for name in proxies})
        wanted.update(no_proxy=_LOOPBACK, NO_PROXY=_LOOPBACK)
    return {name: value for name, value in wanted.items() if name not in os.environ}


def loopback_ray() -> None:
    """Sets `loopback_ray_env()` in this process (and so in the Ray processes it starts). Call it before
    the first `import ray`: Ray reads the node-address switch when imported."""
    os.environ.update(loopback_ray_env())


__all__ = ["InputError", "Signature", "TensorSpec", "choose_max_batch", "loopback_ray", "loopback_ray_env", "run_batch"]
