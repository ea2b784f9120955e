"""``hie check`` reports every class of mapping error with file, line and what is wrong.

No mapping error may surface for the first time on a message: each case here is a mapping file
with one mistake, loaded through the same ``hie check`` a hospital integrator runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.mapping import functions

SHIPPED_TABLES = Path(__file__).resolve().parents[3] / "mappings" / "code_tables"

CHANNEL = """id: his
source: {url: "mllp://127.0.0.1:2599"}
steps:
  - map: {mapping: vendor-adt}
destinations:
  - {id: out, url: "memory://out"}
"""

GOOD = """description: a small vendor mapping
input: hl7v2
output: model:AdtEvent
rules:
  - {to: event, from: MSH.9.2, required: true}
  - {to: control_id, from: MSH.10}
  - to: patient.identifiers[*]
    each: PID.3[*]
    rules:
      - {to: value, from: .1}
  - {to: patient.sex, from: PID.8, table: hl7-0001-to-gb-t-2261-1}
  - {to: patient.birth_date, from: PID.7, transform: hl7_date}
"""


def check(tmp_path: Path, mapping: str, *, tables: dict[str, str] | None = None) -> tuple[int, list[str]]:
    (tmp_path / "channels").mkdir(parents=True)
    (tmp_path / "channels" / "his.yaml").write_text(CHANNEL, "utf-8")
    folder = tmp_path / "mappings"
    (folder / "code_tables").mkdir(parents=True)
    for table in SHIPPED_TABLES.glob("*.yaml"):
        (folder / "code_tables" / table.name).write_bytes(table.read_bytes())
    for name, text in (tables or {}).items():
        (folder / "code_tables" / f"{name}.yaml").write_text(text, "utf-8")
    (folder / "vendor-adt.yaml").write_text(mapping, "utf-8")
    (tmp_path / "config.yaml").write_text("engine: {data_dir: data}\n", "utf-8")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "config.yaml")])
    lines = [line for line in result.output.splitlines() if "problem(s)" not in line]
    return result.exit_code, lines


def only_problem(tmp_path: Path, mapping: str) -> str:
    code, lines = check(tmp_path, mapping)
    assert code == 2, lines
    mine = [x for x in lines if "vendor-adt.yaml" in x]
    assert len(mine) == 1, lines
    return mine[0]


def test_a_good_mapping_passes(tmp_path: Path) -> None:
    code, lines = check(tmp_path, GOOD)
    assert code == 0, lines


@pytest.mark.parametrize(
    ("broken", "line", "expected"),
    [
        ("transform: hl7_date}", 12, "unknown function 'hl7_dat"),
        ("from: MSH.9.2,", 5, "bad path"),
        ("table: hl7-0001-to-gb-t-2261-1}", 11, "unknown code table 'hl7-0001-to-gb-t-2261-X'"),
        ("to: patient.birth_date", 12, "Patient has no field 'birth_dat'"),
        (
            "{to: patient.birth_date, from: PID.7, transform: hl7_date}",
            12,
            "takes a date, but PID.7 gives text",
        ),
    ],
    ids=["unknown-function", "path-syntax", "unknown-table", "no-such-field", "type-mismatch"],
)
def test_each_class_of_mapping_error_names_file_line_and_reason(
    tmp_path: Path, broken: str, line: int, expected: str
) -> None:
    replacement = {
        "transform: hl7_date}": "transform: hl7_dat}",
        "from: MSH.9.2,": "from: MSH..9,",
        "table: hl7-0001-to-gb-t-2261-1}": "table: hl7-0001-to-gb-t-2261-X}",
        "to: patient.birth_date": "to: patient.birth_dat",
        "{to: patient.birth_date, from: PID.7, transform: hl7_date}": "{to: patient.birth_date, from: PID.7}",
    }[broken]
    assert broken in GOOD
    problem = only_problem(tmp_path, GOOD.replace(broken, replacement, 1))
    assert f"vendor-adt.yaml:{line}:" in problem, problem
    assert expected in problem, problem


def test_the_hint_says_how_to_fix_a_type_mismatch(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, GOOD.replace(", transform: hl7_date}", "}"))
    assert "add transform hl7_date" in problem


def test_a_coded_field_needs_a_code_table(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, GOOD.replace(", table: hl7-0001-to-gb-t-2261-1}", "}"))
    assert "patient.sex is a coded value: map it through a code table" in problem


def test_a_bad_function_argument_is_caught(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, GOOD.replace("transform: hl7_date}", "transform: {pad: {width: wide}}}"))
    assert ":12:" in problem and "pad" in problem


def test_a_relative_path_outside_each_is_an_error(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, GOOD.replace("from: MSH.10}", "from: .10}"))
    assert ":6:" in problem


def test_unknown_keys_and_two_sources_are_reported(tmp_path: Path) -> None:
    code, lines = check(tmp_path, GOOD.replace("required: true}", "requird: true}"))
    assert code == 2 and any("vendor-adt.yaml:5:" in x and "unknown field" in x for x in lines), lines
    problem = only_problem(tmp_path / "two", GOOD.replace("from: MSH.10}", "from: MSH.10, value: X}"))
    assert "one source" in problem


def test_a_channel_naming_a_missing_or_broken_mapping(tmp_path: Path) -> None:
    code, lines = check(tmp_path, GOOD.replace("hl7_date", "nope"))
    assert code == 2
    assert any("his.yaml" in x and "mapping vendor-adt has errors" in x for x in lines), lines
    other = tmp_path / "other"
    check(other, GOOD)
    (other / "channels" / "his.yaml").write_text(CHANNEL.replace("vendor-adt", "vendor-adt2"), "utf-8")
    result = CliRunner().invoke(main, ["check", str(other / "config.yaml")])
    assert (
        result.exit_code == 2 and "mapping file not found" in result.output and "vendor-adt2" in result.output
    )


def test_a_code_table_target_outside_its_value_set(tmp_path: Path) -> None:
    table = (
        "kind: map\nsource: {system: local}\ntarget: {value_set: gb-t-2261-1-sex}\nmap:\n  M: '1'\n  F: '7'\n"
    )
    mapping = GOOD.replace("hl7-0001-to-gb-t-2261-1", "vendor-sex")
    code, lines = check(tmp_path, mapping, tables={"vendor-sex": table})
    assert code == 2
    assert any("vendor-sex.yaml:6:" in x and "'7'" in x for x in lines), lines


def test_a_function_registered_in_python_is_used_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example: a module named in engine.functions_modules registers a function."""
    (tmp_path / "hospital_d_functions.py").write_text(
        "from engine.mapping.errors import ValueRejected\n"
        "from engine.mapping.functions import register\n\n"
        '@register("bed_code_d", doc="ward-bed as written by Hospital D: 0312-12 -> 12")\n'
        "def bed_code(value: str, args: None) -> str:\n"
        '    ward, sep, bed = value.partition("-")\n'
        "    if not sep:\n"
        '        raise ValueRejected(f"not a ward-bed number: {value!r}", value)\n'
        "    return bed\n",
        "utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # the registry is process-wide: give this test its own copy, and forget the module afterwards
    monkeypatch.setattr(functions, "FUNCTIONS", dict(functions.FUNCTIONS))
    monkeypatch.setitem(sys.modules, "hospital_d_functions", None)  # restored (removed) after the test
    del sys.modules["hospital_d_functions"]
    mapping = GOOD + "  - {to: encounter.bed, from: PV1.3.1, transform: bed_code_d}\n"
    code, lines = check(tmp_path / "cfg", mapping)
    assert code == 2 and any("unknown function 'bed_code_d'" in x for x in lines), lines
    (tmp_path / "cfg" / "config.yaml").write_text(
        "engine: {data_dir: data, functions_modules: [hospital_d_functions]}\n", "utf-8"
    )
    from engine.config import load_config

    app = load_config(tmp_path / "cfg" / "config.yaml")
    mapped = (
        app.mapping_catalog()
        .get("vendor-adt")
        .run("MSH|^~\\&|HIS|D|HIE|C|20261120||ADT^A01|X1|P|2.5\rPID|1||P1||||19800101|M\rPV1|1|I|0312-12\r")
    )
    assert mapped.output.encounter.bed == "12"
    with pytest.raises(Exception, match="not a ward-bed number: '0312'"):
        app.mapping_catalog().get("vendor-adt").run(
            "MSH|^~\\&|HIS|D|HIE|C|20261120||ADT^A01|X2|P|2.5\rPID|1||P1||||19800101|M\rPV1|1|I|0312\r"
        )
