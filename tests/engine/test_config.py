"""``hie check``: every configuration problem is reported with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.config import load_config
from engine.errors import ConfigError


def write(tmp_path: Path, channels: dict[str, str], config: str = "engine: {data_dir: data}\n") -> Path:
    (tmp_path / "channels").mkdir(exist_ok=True)
    for name, text in channels.items():
        (tmp_path / "channels" / f"{name}.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    return tmp_path / "config.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


GOOD = """id: adt
source:
  url: mllp://127.0.0.1:2575
destinations:
  - id: out
    url: memory://out
"""


def test_the_shipped_sample_config_is_valid() -> None:
    app = load_config(Path(__file__).parents[2] / "config.yaml")
    assert {c.id for c in app.channels} >= {"adt-hospital-a", "adt-downstream"}


def test_unknown_connector_scheme_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"adt": GOOD.replace("memory://out", "ftp://x/y")})
    (msg,) = problems(path)
    assert msg.startswith(f"{tmp_path / 'channels' / 'adt.yaml'}:6:")
    assert "destinations[0].url" in msg and "unknown destination connector scheme 'ftp'" in msg


def test_bad_port_and_unknown_option(tmp_path: Path) -> None:
    text = "id: adt\nsource:\n  url: mllp://127.0.0.1:99999\n  max_conections: 5\n"
    found = problems(write(tmp_path, {"adt": text}))
    assert any(":3:" in p and "source.url" in p and "port" in p for p in found), found
    assert any(":4:" in p and "source.max_conections" in p and "unknown field" in p for p in found), found


def test_duplicate_channel_id_and_id_differing_from_file_name(tmp_path: Path) -> None:
    other = GOOD.replace("2575", "2577")
    found = problems(write(tmp_path, {"adt": GOOD, "copy": other}))
    assert any("copy.yaml:1:" in p and "differs from file name" in p for p in found), found
    assert any("copy.yaml:1:" in p and "duplicate channel id 'adt'" in p for p in found), found


def test_two_mllp_channels_on_one_port(tmp_path: Path) -> None:
    found = problems(write(tmp_path, {"adt": GOOD, "lab": GOOD.replace("id: adt", "id: lab")}))
    assert any("lab.yaml:3:" in p and "port 2575 is already used by channel adt" in p for p in found), found


def test_missing_mapping_file_and_unknown_step(tmp_path: Path) -> None:
    text = GOOD + "steps:\n  - map: {mapping: vendor-x}\n  - transmogrify: {}\n"
    found = problems(write(tmp_path, {"adt": text}))
    assert any(":8:" in p and "steps[0].map.mapping" in p and "mapping file not found" in p for p in found), (
        found
    )
    assert any(":9:" in p and "unknown step 'transmogrify'" in p for p in found), found


def test_route_to_unknown_destination_and_bad_filter_path(tmp_path: Path) -> None:
    text = (
        GOOD
        + """steps:
  - filter:
      fields:
        - {path: PID-3, equals: x}
  - route:
      rules:
        - when: {message_type: ADT^A01}
          to: [out, nowhere]
"""
    )
    found = problems(write(tmp_path, {"adt": text}))
    assert any(":10:" in p and "bad field path 'PID-3'" in p for p in found), found
    assert any(":14:" in p and "no destination with id 'nowhere'" in p for p in found), found


def test_after_delivery_needs_a_known_destination(tmp_path: Path) -> None:
    found = problems(write(tmp_path, {"adt": GOOD + "ack: after_delivery\nack_from: elsewhere\n"}))
    assert any(":8:" in p and "no destination with id 'elsewhere'" in p for p in found), found


def test_environment_interpolation_and_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIE_TEST_PORT", "2599")
    path = write(
        tmp_path,
        {"adt": GOOD.replace("2575", "${HIE_TEST_PORT}")},
        "engine: {data_dir: data}\nstore:\n  url: postgresql+psycopg://hie:${HIE_TEST_NO_SUCH_SECRET}@db/hie\n",
    )
    (msg,) = problems(path)
    assert "config.yaml:3:" in msg and "HIE_TEST_NO_SUCH_SECRET is not set" in msg
    monkeypatch.setenv("HIE_TEST_NO_SUCH_SECRET", "s3cret")
    app = load_config(path)
    assert app.store_url == "postgresql+psycopg://hie:s3cret@db/hie"
    assert app.channels[0].source.url == "mllp://127.0.0.1:2599"


def test_yaml_syntax_error_and_missing_tls_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"adt": "id: adt\nsource: [unclosed\n"},
        "tls:\n  hosp:\n    cert: nope.pem\n    key: nope.key\n",
    )
    found = problems(path)
    assert any("adt.yaml:" in p and "YAML syntax error" in p for p in found), found
    assert any("config.yaml:3:" in p and "tls.hosp.cert" in p and "file not found" in p for p in found), found


def test_hie_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, {"adt": GOOD.replace("memory://out", "ftp://x").replace("2575", "0x")})
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert "unknown destination connector scheme 'ftp'" in result.output
    assert "port" in result.output
    assert "2 problem(s)" in result.output


def test_hie_check_ok_lists_channels(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(write(tmp_path, {"adt": GOOD}))])
    assert result.exit_code == 0, result.output
    assert "ok, 1 channel(s)" in result.output and "adt: mllp://127.0.0.1:2575 -> out" in result.output


def test_http_sources_share_a_port_but_not_a_path(tmp_path: Path) -> None:
    http = "id: {id}\nsource:\n  url: http://127.0.0.1:8099{path}\n"
    found = problems(
        write(
            tmp_path,
            {
                "adt": http.format(id="adt", path="/hl7/adt"),
                "lab": http.format(id="lab", path="/hl7/lab"),
                "oru": http.format(id="oru", path="/hl7/adt"),
            },
        )
    )
    assert len(found) == 1 and "oru.yaml:3:" in found[0] and "path /hl7/adt on port 8099" in found[0], found
