"""Fixtures shared by every part's tests: an Xvfb display, and YAML configs made from a base."""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, nested mappings key by key (None deletes a key)."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.fixture
def config_writer(tmp_path) -> Callable[[dict[str, Any]], Callable[..., Path]]:
    """``config_writer(BASE)`` -> ``make(changes=None, name=None)``: writes BASE with the changes
    merged in as a YAML file under tmp_path and returns its path."""

    def writer(base: dict[str, Any]) -> Callable[..., Path]:
        counter = iter(range(1000))

        def make(changes: dict[str, Any] | None = None, name: str | None = None) -> Path:
            path = tmp_path / (name or f"experiment{next(counter)}.yaml")
            path.write_text(yaml.safe_dump(merge(base, changes or {}), sort_keys=False))
            return path

        return make

    return writer


@pytest.fixture
def screen():
    """A fresh Xvfb display (its number chosen by Xvfb itself)."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              pass_fds=[write], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    with os.fdopen(read, "rb") as pipe:
        while not number.endswith(b"\n"):
            chunk = pipe.read(1)
            if not chunk:
                break
            number += chunk
    assert number.strip(), "Xvfb did not start"
    yield f":{number.decode().strip()}"
    server.terminate()
    server.wait(timeout=10)
