"""Code tables: loading a folder (every problem with its file and line) and looking codes up."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from engine.errors import ConfigProblem
from engine.mapping.codetables import CodeOutcome, CodeTables
from engine.mapping.errors import ValueRejected

SHIPPED = Path(__file__).parents[3] / "mappings" / "code_tables"
SEX_OID = "2.16.156.10011.2.3.3.4"

SEX = """\
kind: value_set
name: 生理性别 GB/T 2261.1-2003
system: 2.16.156.10011.2.3.3.4
codes:
  "0": 未知的性别
  "1": 男性
  "2": 女性
  "9": 未说明的性别
"""


def load(tmp_path: Path, **files: str) -> tuple[CodeTables, list[ConfigProblem]]:
    """Write ``name=text`` files (name with _ for -) next to the GB/T 2261.1 value set, and load."""
    (tmp_path / "gb-t-2261-1-sex.yaml").write_text(SEX, encoding="utf-8")
    for name, text in files.items():
        (tmp_path / f"{name.replace('_', '-')}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return CodeTables.load(tmp_path)


def one_problem(tmp_path: Path, name: str, text: str) -> ConfigProblem:
    tables, problems = load(tmp_path, **{name: text})
    assert len(problems) == 1, problems
    assert name.replace("_", "-") not in tables
    return problems[0]


def sex_map(body: str) -> str:
    head = "kind: map\nsource: {system: local}\ntarget: {value_set: gb-t-2261-1-sex}\n"
    return head + textwrap.dedent(body)


# -- the shipped tables ---------------------------------------------------------------------------

SHIPPED_IDS = [
    "cv02-01-101-id-document-type",
    "cv02-01-204-insurance-type",
    "cv09-00-404-patient-type",
    "cv09-00-404-to-hl7-0004",
    "gb-3304-ethnicity",
    "gb-t-2261-1-sex",
    "gb-t-2261-1-to-hl7-0001",
    "gb-t-2261-2-marital-status",
    "gb-t-2261-2-to-hl7-0002",
    "gb-t-2261-4-employment-status",
    "gb-t-2659-nationality",
    "hl7-0001-sex",
    "hl7-0001-to-gb-t-2261-1",
    "hl7-0002-marital-status",
    "hl7-0002-to-gb-t-2261-2",
    "hl7-0004-patient-class",
    "hl7-0004-to-cv09-00-404",
]


@pytest.fixture(scope="module")
def shipped() -> CodeTables:
    tables, problems = CodeTables.load(SHIPPED)
    assert problems == []
    return tables


def test_every_shipped_table_loads_without_problems(shipped: CodeTables) -> None:
    assert set(SHIPPED_IDS) <= set(shipped.ids)
    assert len(shipped) == len(list(SHIPPED.glob("*.yaml")))


def test_every_shipped_file_says_where_it_comes_from() -> None:
    for file in SHIPPED.glob("*.yaml"):
        if file.stem in SHIPPED_IDS:
            assert file.read_text(encoding="utf-8").startswith("# "), file.name


@pytest.mark.parametrize(
    ("table_id", "system"),
    [
        ("gb-t-2261-1-sex", SEX_OID),
        ("cv02-01-101-id-document-type", "2.16.156.10011.2.3.1.1"),
        ("gb-t-2261-2-marital-status", "2.16.156.10011.2.3.3.5"),
        ("gb-3304-ethnicity", "2.16.156.10011.2.3.3.3"),
        ("gb-t-2659-nationality", "2.16.156.10011.2.3.3.1"),
        ("gb-t-2261-4-employment-status", "2.16.156.10011.2.3.3.13"),
        ("cv09-00-404-patient-type", "2.16.156.10011.2.3.1.271"),
        ("cv02-01-204-insurance-type", "2.16.156.10011.2.3.1.248"),
        ("hl7-0001-sex", "2.16.840.1.113883.12.1"),
        ("hl7-0002-marital-status", "2.16.840.1.113883.12.2"),
        ("hl7-0004-patient-class", "2.16.840.1.113883.12.4"),
    ],
)
def test_shipped_value_sets_carry_their_oid(shipped: CodeTables, table_id: str, system: str) -> None:
    table = shipped.get(table_id)
    assert (table.kind, table.target_system) == ("value_set", system)


def test_sex_1_is_male_and_2_is_female(shipped: CodeTables) -> None:
    assert shipped.get("gb-t-2261-1-sex").display("1") == "男性"
    assert shipped.get("gb-t-2261-1-sex").display("2") == "女性"
    assert shipped.get("hl7-0001-to-gb-t-2261-1").lookup("M") == CodeOutcome("1", "男性", SEX_OID, None)
    assert shipped.get("hl7-0001-to-gb-t-2261-1").lookup("f").code == "2"
    to_hl7 = shipped.get("gb-t-2261-1-to-hl7-0001")
    assert [to_hl7.lookup(c).code for c in ("0", "1", "2", "9")] == ["U", "M", "F", "U"]
    assert to_hl7.lookup("1").system == "2.16.840.1.113883.12.1"
    assert set(shipped.get("gb-t-2261-1-sex").target_codes or ()) == {"0", "1", "2", "9"}


def test_ethnicity_has_the_56_groups(shipped: CodeTables) -> None:
    table = shipped.get("gb-3304-ethnicity")
    assert table.target_codes == frozenset(f"{n:02d}" for n in range(1, 57))
    assert table.lookup("01").display == "汉族"
    assert table.display("36") == "毛南族"
    with pytest.raises(ValueRejected):
        table.lookup("99")  # not a GB 3304 code: Hospital C's error case


def test_nationality_uses_iso_numeric_codes(shipped: CodeTables) -> None:
    table = shipped.get("gb-t-2659-nationality")
    codes = table.target_codes or frozenset()
    assert len(codes) >= 239 and all(len(c) == 3 and c.isdigit() for c in codes)
    expected = {"156": "中国", "344": "中国香港", "446": "中国澳门", "158": "中国台湾", "410": "韩国"}
    assert {code: table.display(code) for code in expected} == expected
    assert table.lookup("004").code == "004"  # leading zeros kept
    for alpha in ("CHN", "CN", "4"):
        with pytest.raises(ValueRejected):
            table.lookup(alpha)


def test_hl7_marital_status_maps_where_it_means_the_same(shipped: CodeTables) -> None:
    to_gb = shipped.get("hl7-0002-to-gb-t-2261-2")
    assert [to_gb.lookup(c).code for c in "SMWDU"] == ["10", "20", "30", "40", "90"]
    with pytest.raises(ValueRejected, match="hl7-0002-to-gb-t-2261-2"):
        to_gb.lookup("Q")  # Hospital B's error case
    back = shipped.get("gb-t-2261-2-to-hl7-0002")
    assert [back.lookup(c).code for c in ("10", "21", "30", "40", "90")] == ["S", "M", "W", "D", "U"]


def test_patient_class_both_ways(shipped: CodeTables) -> None:
    to_cv = shipped.get("hl7-0004-to-cv09-00-404")
    assert [to_cv.lookup(c).code for c in "OEI"] == ["1", "2", "3"]
    assert to_cv.lookup("I").display == "住院"
    back = shipped.get("cv09-00-404-to-hl7-0004")
    assert [back.lookup(c).code for c in "1239"] == ["O", "E", "I", "U"]


# -- lookups --------------------------------------------------------------------------------------


def test_map_lookup_gives_code_display_and_system(tmp_path: Path) -> None:
    tables, problems = load(
        tmp_path,
        hospital_a_sex=sex_map("""\
        case_sensitive: false
        map:
          "1": "1"
          "2": "2"
          M: "1"
          F: "2"
        """),
    )
    assert problems == []
    table = tables.get("hospital-a-sex")
    assert (table.kind, table.source_system, table.target_system) == ("map", "local", SEX_OID)
    assert table.lookup("M") == CodeOutcome("1", "男性", SEX_OID, None)
    assert table.lookup("f") == CodeOutcome("2", "女性", SEX_OID, None)
    assert table.lookup(" m ").code == "1"  # padded CHAR columns of front-end processor views
    assert table.display("2") == "女性"
    assert table.display("7") is None


def test_case_sensitive_by_default(tmp_path: Path) -> None:
    tables, _ = load(tmp_path, t=sex_map('map: {M: "1"}\n'))
    assert tables.get("t").lookup("M").code == "1"
    assert tables.get("t").lookup("M ").code == "1"  # spaces never matter
    with pytest.raises(ValueRejected):
        tables.get("t").lookup("m")


def test_else_takes_every_other_code(tmp_path: Path) -> None:
    tables, problems = load(tmp_path, t=sex_map('map: {M: "1", F: "2"}\nelse: "9"\n'))
    assert problems == []
    assert tables.get("t").lookup("X") == CodeOutcome("9", "未说明的性别", SEX_OID, None)
    assert tables.get("t").lookup("").code == "9"


def test_unmapped_error_names_the_value_and_the_table(tmp_path: Path) -> None:
    tables, _ = load(tmp_path, hospital_a_sex=sex_map('map: {M: "1"}\n'))
    with pytest.raises(ValueRejected) as info:
        tables.get("hospital-a-sex").lookup("X")
    assert info.value.message == f"code 'X' is not mapped by table hospital-a-sex (source local → {SEX_OID})"
    assert (info.value.value, info.value.hl7_code) == ("X", "103")


def test_unmapped_warn_passes_the_value_with_a_warning(tmp_path: Path) -> None:
    tables, _ = load(tmp_path, t=sex_map('map: {M: "1"}\nunmapped: warn\n'))
    outcome = tables.get("t").lookup("X")
    assert (outcome.code, outcome.display, outcome.system) == ("X", None, None)  # not a GB/T 2261.1 code
    assert outcome.warning is not None and "'X'" in outcome.warning and "table t" in outcome.warning
    assert tables.get("t").lookup("M").warning is None


def test_unmapped_pass_is_silent_and_keeps_the_source_system(tmp_path: Path) -> None:
    text = "kind: map\nsource: {system: 2.16.840.1.113883.12.1}\ntarget: {value_set: gb-t-2261-1-sex}\n"
    tables, problems = load(tmp_path, t=text + 'map: {M: "1"}\nunmapped: pass\n')
    assert problems == []
    assert tables.get("t").lookup("X") == CodeOutcome("X", None, "2.16.840.1.113883.12.1", None)


def test_a_value_set_as_a_table_validates_membership(tmp_path: Path) -> None:
    tables, _ = load(tmp_path)
    sex = tables.get("gb-t-2261-1-sex")
    assert sex.lookup("2") == CodeOutcome("2", "女性", SEX_OID, None)
    with pytest.raises(ValueRejected) as info:
        sex.lookup("M")
    assert info.value.hl7_code == "103"
    assert "gb-t-2261-1-sex" in info.value.message and SEX_OID in info.value.message


def test_a_case_insensitive_value_set_returns_its_own_spelling(shipped: CodeTables) -> None:
    assert shipped.get("hl7-0001-sex").lookup("m") == CodeOutcome("M", "Male", "2.16.840.1.113883.12.1", None)


def test_null_target_leaves_the_field_empty(tmp_path: Path) -> None:
    tables, problems = load(tmp_path, t=sex_map('map: {M: "1", X: ~}\n'))
    assert problems == []
    assert tables.get("t").lookup("X") == CodeOutcome(None, None, None, None)


def test_a_target_without_value_set_has_no_display(tmp_path: Path) -> None:
    text = "kind: map\nsource: {value_set: gb-t-2261-1-sex}\ntarget: {system: http://hl7.org/fhir/administrative-gender}\n"
    tables, problems = load(tmp_path, t=text + "map: {'1': male, '2': female}\nelse: unknown\n")
    assert problems == []
    table = tables.get("t")
    assert table.lookup("1") == CodeOutcome("male", None, "http://hl7.org/fhir/administrative-gender", None)
    assert table.target_codes is None


def test_codes_are_read_as_written(tmp_path: Path) -> None:
    tables, problems = load(
        tmp_path,
        id_type="""\
        kind: value_set
        system: 2.16.156.10011.2.3.1.1
        codes:
          01: 居民身份证
          99: 其他法定有效证件
        """,
        yes_no="""\
        kind: map
        source: {system: local}
        target: {system: 2.16.840.1.113883.12.136}
        map:
          no: N
          yes: Y
          0: N
        """,
    )
    assert problems == []
    id_type = tables.get("id-type")
    assert id_type.target_codes == frozenset({"01", "99"})
    assert id_type.lookup("01").code == "01"
    with pytest.raises(ValueRejected):
        id_type.lookup("1")  # YAML 1.1 would have read 01 as the integer 1
    assert tables.get("yes-no").lookup("no").code == "N"  # ... and no as False
    assert tables.get("yes-no").lookup("0").code == "N"


def test_lookup_is_one_dict_access(shipped: CodeTables) -> None:
    lookup = shipped.get("hl7-0001-to-gb-t-2261-1").lookup
    start = time.perf_counter()
    for _ in range(100_000):
        lookup("M")
    assert time.perf_counter() - start < 0.5  # ~0.02 s on a laptop; a regex or a model would show


# -- the folder -----------------------------------------------------------------------------------


def test_tables_api(tmp_path: Path) -> None:
    tables, _ = load(tmp_path, b_map=sex_map('map: {M: "1"}\n'))
    assert tables.ids == ["b-map", "gb-t-2261-1-sex"]
    assert "b-map" in tables and "nope" not in tables
    with pytest.raises(KeyError):
        tables.get("nope")


def test_a_missing_folder_has_no_tables(tmp_path: Path) -> None:
    tables, problems = CodeTables.load(tmp_path / "absent")
    assert (tables.ids, problems) == ([], [])


def test_every_problem_of_the_folder_is_reported(tmp_path: Path) -> None:
    tables, problems = load(
        tmp_path,
        a=sex_map('map: {M: "3"}\n'),
        b="kind: lookup\n",
        c=sex_map('map: {M: "1"}\n'),
    )
    assert [Path(p.file).name for p in problems] == ["a.yaml", "b.yaml"]
    assert "c" in tables and "a" not in tables and "b" not in tables


# -- load-time errors: each with its file and line ------------------------------------------------


def test_unknown_kind(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", "# a table\nkind: lookup\ncodes: {a: b}\n")
    assert (Path(p.file).name, p.line, p.field) == ("t.yaml", 2, "kind")
    assert "value_set or map" in p.message and "'lookup'" in p.message


def test_duplicate_key(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('map:\n  M: "1"\n  F: "2"\n  M: "2"\n'))
    assert (p.line, p.field, p.message) == (7, "map.M", "duplicate key")


def test_duplicate_key_in_another_spelling(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('map:\n  1: "1"\n  "1": "1"\n'))
    assert (p.line, p.message) == (6, "duplicate key")


def test_keys_differing_only_in_case_when_case_insensitive(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('case_sensitive: false\nmap:\n  M: "1"\n  m: "1"\n'))
    assert (p.line, p.field) == (7, "map.m")
    assert "'M' and 'm'" in p.message


def test_target_code_not_in_the_target_value_set(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('map:\n  M: "1"\n  F: "女"\n'))
    assert (Path(p.file).name, p.line, p.field) == ("t.yaml", 6, "map.F")
    assert p.message == f"'女' is not a code of the target value set gb-t-2261-1-sex ({SEX_OID})"


def test_target_code_in_the_wrong_case_gets_a_hint(shipped: CodeTables, tmp_path: Path) -> None:
    (tmp_path / "hl7-0001-sex.yaml").write_text((SHIPPED / "hl7-0001-sex.yaml").read_text("utf-8"), "utf-8")
    text = "kind: map\nsource: {value_set: gb-t-2261-1-sex}\ntarget: {value_set: hl7-0001-sex}\n"
    text += "map: {'1': m}\n"
    p = one_problem(tmp_path, "t", text)
    assert (p.line, p.field) == (4, "map.1")
    assert "did you mean 'M'?" in p.message


def test_source_code_not_in_the_source_value_set(tmp_path: Path) -> None:
    text = "kind: map\nsource: {value_set: gb-t-2261-1-sex}\ntarget: {system: local}\n"
    text += "map:\n  '1': M\n  '3': F\n"
    p = one_problem(tmp_path, "t", text)
    assert (p.line, p.field) == (6, "map.3")
    assert "source value set gb-t-2261-1-sex" in p.message


def test_unknown_value_set(tmp_path: Path) -> None:
    text = 'kind: map\nsource: {system: local}\ntarget:\n  value_set: gb-t-2261-sex\nmap: {M: "1"}\n'
    p = one_problem(tmp_path, "t", text)
    assert (p.line, p.field) == (4, "target.value_set")
    assert "'gb-t-2261-sex' does not exist" in p.message and "gb-t-2261-1-sex" in p.message


def test_a_map_is_not_a_value_set(tmp_path: Path) -> None:
    _, problems = load(
        tmp_path,
        m=sex_map('map: {M: "1"}\n'),
        t='kind: map\nsource: {value_set: m}\ntarget: {system: local}\nmap: {"1": "1"}\n',
    )
    assert [(Path(p.file).name, p.line, p.field) for p in problems] == [("t.yaml", 2, "source.value_set")]
    assert "'m' is a map, not a value set" in problems[0].message


def test_a_broken_value_set_is_named_as_such(tmp_path: Path) -> None:
    _, problems = load(
        tmp_path,
        vs="kind: value_set\nsystem: 1.2.3\ncodes: {a: A, a: B}\n",
        t='kind: map\nsource: {system: local}\ntarget: {value_set: vs}\nmap: {"x": a}\n',
    )
    found = {Path(p.file).name: p for p in problems}
    assert (found["vs.yaml"].field, found["vs.yaml"].message) == ("codes.a", "duplicate key")
    assert found["t.yaml"].field == "target.value_set"
    assert "value set 'vs' has problems of its own" in found["t.yaml"].message


def test_else_not_in_the_target_value_set(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('map: {M: "1"}\nelse: U\n'))
    assert (p.line, p.field) == (5, "else")
    assert "'U' is not a code of the target value set" in p.message


def test_many_keys_in_one_is_refused_with_the_readable_form(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('map:\n  M: "1"\n  [U, O]: "9"\n'))
    assert p.line == 6
    assert "one line per code" in p.message


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (sex_map('map: {M: "1"}\nlabel: x\n'), 5, "label", "unknown field"),
        (sex_map('map: {M: "1"}\nunmapped: ignore\n'), 5, "unmapped", "error, warn or pass"),
        (sex_map('map: {M: "1"}\ncase_sensitive: maybe\n'), 5, "case_sensitive", "true or false"),
        (sex_map('map: {M: "1"}\nelse: "9"\nunmapped: warn\n'), 6, "unmapped", "else already maps"),
        (sex_map("map: {}\n"), 4, "map", "empty"),
        (sex_map('map: {M: ["1", "2"]}\n'), 4, "map.M", "one text"),
        ('kind: map\ntarget: {value_set: gb-t-2261-1-sex}\nmap: {M: "1"}\n', 1, "source", "system"),
        (
            'kind: map\nsource: {system: HIS}\ntarget: {value_set: gb-t-2261-1-sex}\nmap: {M: "1"}\n',
            2,
            "source.system",
            "an OID",
        ),
        (
            "kind: map\nsource: {system: local}\n"
            "target: {value_set: gb-t-2261-1-sex, system: 2.16.840.1.113883.12.1}\n"
            'map: {M: "1"}\n',
            3,
            "target.system",
            "differs",
        ),
        ("id: other-name\nkind: value_set\nsystem: 1.2.3\ncodes: {a: A}\n", 1, "id", "file name"),
        ("kind: value_set\nsystem: 2.16.156.10011.2.3.3.4.\ncodes: {a: A}\n", 2, "system", "an OID"),
        ("kind: value_set\nsystem: 1.2.3\ncodes:\n", 3, "codes", "lists its codes"),
        ("kind: value_set\nsystem: 1.2.3\ncodes: {' a': A}\n", 3, "codes. a", "spaces"),
        ("kind: value_set\nsystem: 1.2.3\ncodes:\n  a: A\n  b: ${HOME}\n", 5, "codes.b", "HOME"),
        ("- kind\n- value_set\n", 1, "", "YAML mapping"),
        ("kind: value_set\nsystem: 1.2.3\n  codes: {}\n", 3, "", "YAML syntax error"),
    ],
)
def test_load_time_errors(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    p = one_problem(tmp_path, "t", text)
    assert (Path(p.file).name, p.line, p.field) == ("t.yaml", line, field), p
    assert words in p.message, p


def test_file_names_are_kebab_case_ids(tmp_path: Path) -> None:
    (tmp_path / "Hospital_A.yaml").write_text("kind: value_set\nsystem: 1.2.3\ncodes: {a: A}\n", "utf-8")
    tables, problems = CodeTables.load(tmp_path)
    assert tables.ids == []
    assert [(Path(p.file).name, p.message) for p in problems] == [
        ("Hospital_A.yaml", "file names are kebab-case ids, not 'Hospital_A'")
    ]


def test_problems_print_as_file_line_field_message(tmp_path: Path) -> None:
    p = one_problem(tmp_path, "t", sex_map('map:\n  M: "1"\n  F: "7"\n'))
    message = f"'7' is not a code of the target value set gb-t-2261-1-sex ({SEX_OID})"
    assert str(p) == f"{tmp_path / 't.yaml'}:6: [map.F] {message}"
