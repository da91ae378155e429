"""Connecting to Ray: a local Ray, or a cluster by address, with this folder shipped to the workers."""
import logging
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def runtime_env():
    """The code of tools/ray for every worker (the venv and caches left out)."""
    return {"working_dir": str(HERE), "excludes": [".venv", "__pycache__", "*.pyc"]}


def init_ray(address=None, num_cpus=None, quiet=False):
    """ray.init for the tools: `address` (e.g. "auto") joins a running cluster, else a local Ray."""
    import ray
    if ray.is_initialized():
        return
    kwargs = dict(runtime_env=runtime_env(), logging_level=logging.WARNING if quiet else logging.INFO,
                  log_to_driver=not quiet)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **kwargs)
