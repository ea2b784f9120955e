"""Fixtures shared by the connector tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import AppConfig, load_config
from engine.connectors import memory


@pytest.fixture
def app(tmp_path: Path) -> AppConfig:
    """An engine configuration with no channels, for building connectors directly."""
    (tmp_path / "channels").mkdir()
    (tmp_path / "config.yaml").write_text("engine: {name: HIE, facility: CITY}\n", encoding="utf-8")
    return load_config(tmp_path / "config.yaml", check_connectors=False)


@pytest.fixture(autouse=True)
def _clear_sinks() -> None:
    """memory:// destinations keep what they got in a module dict: start every test empty."""
    memory.SINKS.clear()
