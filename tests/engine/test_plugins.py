"""Plugins named in config.yaml: their sections are validated, a broken one is a located problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_config
from engine.errors import ConfigError


def write(tmp_path: Path, config: str) -> Path:
    (tmp_path / "channels").mkdir(exist_ok=True)
    (tmp_path / "config.yaml").write_text(config, "utf-8")
    return tmp_path / "config.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


def test_a_plugin_section_is_validated_with_file_line_and_field(tmp_path: Path) -> None:
    found = problems(
        write(
            tmp_path,
            "engine: {data_dir: data}\n"
            "empi:\n"
            "  domains:\n"
            "    - {id: hospital-a, namespace: HOSP_A, oid: not-an-oid}\n",
        )
    )
    assert any(":4:" in p and "[empi.domains[0].oid] String should match pattern" in p for p in found), found


def test_an_unknown_top_level_section_is_a_problem(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "engine: {data_dir: data}\nempl: {}\n"))
    assert any(":2:" in p and "[empl] unknown field" in p for p in found), found


def test_a_plugin_that_cannot_be_imported_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "engine: {data_dir: data, plugins: [no_such_plugin_module]}\n"))
    assert any("[engine.plugins] cannot import no_such_plugin_module" in p for p in found), found


def test_the_national_domain_is_not_configured_as_a_domain(tmp_path: Path) -> None:
    found = problems(
        write(
            tmp_path,
            "empi:\n  domains:\n    - {id: ids, namespace: NIC, oid: 2.16.156.10011.1.3}\n",
        )
    )
    assert any("national ID-card domain" in p for p in found), found


def test_the_sample_config_loads_its_domains(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    app = load_config(root / "config.yaml")
    from profiles.empi.config import EmpiConfig

    empi = app.section("empi", EmpiConfig)
    assert [d.id for d in empi.domains] == ["hospital-a", "hospital-b"]
    assert empi.domains[0].sources[0].application == "HIS_A"


def test_an_actor_destination_must_answer_the_sender(tmp_path: Path) -> None:
    path = write(tmp_path, "engine: {data_dir: data}\n")
    (tmp_path / "channels" / "pix.yaml").write_text(
        "id: pix\nsource: {url: 'mllp://127.0.0.1:3999'}\ndestinations:\n  - {id: pix, url: 'pix-iti9:'}\n",
        "utf-8",
    )
    found = problems(path)
    assert any("pix.yaml:4:" in p and "needs ack: after_delivery and ack_from: pix" in p for p in found), (
        found
    )
