"""The HL7 v2 path language: what each form reads, scopes and groups, and the load-time errors."""

from __future__ import annotations

import pytest

from engine.mapping import hl7types
from engine.mapping.errors import DefinitionError
from engine.mapping.hl7path import EVERY, CompiledPath, ScopeKind, Select, compile_path, parse
from engine.mapping.hl7reader import Hl7Reader, RepetitionScope, Scope, SegmentScope

# Made-up patient; 11010519491231002X and 320102198503120012 have valid GB 11643 check digits.
ORU = "\r".join(
    [
        "MSH|^~\\&|LIS|HOSP_B|HIE|CITY_HIE|20261122093000||ORU^R01^ORU_R01|LIS-0007|P|2.5",
        "PID|1||200007^^^HOSP_B^PI~11010519491231002X^^^NIC&2.16.156.10011.1.3&ISO^NI~320102198503120012^^^"
        "HOSP_B^NI||赵^一鸣^^^^^L||19491231|F",
        "ORC|RE|ORD-1^HIS|LAB-1^LIS",
        "OBR|1|ORD-1^HIS|LAB-1^LIS|CBC^血常规^L",
        "OBX|1|NM|WBC^白细胞^L||6.2|10*9/L|4.0-10.0|N|||F",
        "OBX|2|NM|HGB^血红蛋白^L||128|g/L|115-150~110-160|N|||F",
        "NTE|1||复查",
        "OBR|2|ORD-2^HIS|LAB-2^LIS|GLU^血糖^L",
        "OBX|1|NM|GLU^葡萄糖^L||5.4|mmol/L|3.9-6.1|N|||F",
        "NTE|1||空腹",
        "ZPV|1|VIP^贵宾",
    ]
)


@pytest.fixture
def msg() -> Hl7Reader:
    return Hl7Reader(ORU)


def first(path: str, scope: Scope, context: ScopeKind | CompiledPath = ScopeKind.MESSAGE) -> str | None:
    return compile_path(path, context).first(scope)


def values(path: str, scope: Scope, context: ScopeKind | CompiledPath = ScopeKind.MESSAGE) -> list[str]:
    return compile_path(path, context).values(scope)


# --------------------------------------------------------------------------------------------------
# selection


def test_selection_by_name_and_by_number_pick_the_same_repetition(msg: Hl7Reader) -> None:
    for path in ("PID.3[type=NI].1", "PID.3[5=NI].1", 'PID.3[type="NI"].1'):
        assert first(path, msg) == "11010519491231002X", path  # the first NI of the two
    assert first("PID.3[type=PI].4.1", msg) == "HOSP_B"
    assert first("PID.3[type=MR].1", msg) is None


def test_selection_on_a_subcomponent_by_name_or_number(msg: Hl7Reader) -> None:
    authority = "2.16.156.10011.1.3"
    assert first(f"PID.3[authority.universal_id={authority}].1", msg) == "11010519491231002X"
    assert first(f"PID.3[4.2={authority}].1", msg) == "11010519491231002X"
    assert first("PID.3[authority.namespace=HOSP_B].5", msg) == "PI"
    assert first("PID.3[4.1=HOSP_B].5", msg) == "PI"


def test_selection_of_a_segment_by_one_of_its_fields(msg: Hl7Reader) -> None:
    assert first("OBX[3.1=HGB].5", msg) == "128"
    assert first("OBX[3.identifier=GLU].5", msg) == "5.4"
    assert first("OBX[3.1=ALT].5", msg) is None


def test_a_selection_does_not_iterate_but_counts_its_matches(msg: Hl7Reader) -> None:
    path = compile_path("PID.3[type=NI].1")
    assert not path.iterates
    assert path.count(msg) == 2
    assert compile_path("PID.3[type=PI].1").count(msg) == 1


# --------------------------------------------------------------------------------------------------
# iteration, count, first


def test_iteration_over_segments_and_repetitions(msg: Hl7Reader) -> None:
    assert values("OBX[*].5", msg) == ["6.2", "128", "5.4"]
    assert values("PID.3[*].1", msg) == ["200007", "11010519491231002X", "320102198503120012"]
    assert values("PID.3[*].4.2", msg) == ["2.16.156.10011.1.3"]  # absent ones skipped
    assert values("OBX[*].7[*]", msg) == ["4.0-10.0", "115-150", "110-160", "3.9-6.1"]
    assert first("OBX[*].5", msg) == "6.2"
    assert values("PV1[*].2", msg) == []


def test_explicit_occurrence_and_repetition(msg: Hl7Reader) -> None:
    assert first("OBX[2].5", msg) == "128"
    assert first("OBX[3].3.2", msg) == "葡萄糖"
    assert first("OBX[4].5", msg) is None
    assert first("PID.3[3].1", msg) == "320102198503120012"
    assert first("OBX[2].7[2]", msg) == "110-160"


def test_count_is_what_a_rule_expecting_one_value_checks(msg: Hl7Reader) -> None:
    assert compile_path("PID.3.1").count(msg) == 3  # repetitions of PID-3
    assert compile_path("PID.3[2].1").count(msg) == 1
    assert compile_path("PID.7").count(msg) == 1
    assert compile_path("PV1.2").count(msg) == 0
    assert compile_path("OBX.5").count(msg) == 3  # three OBX segments
    assert compile_path("OBX[2].7").count(msg) == 2
    assert compile_path("OBR").count(msg) == 2
    assert compile_path("MSH.2").count(msg) == 1


def test_segment_only_paths_read_the_segment(msg: Hl7Reader) -> None:
    assert first("ZPV", msg) == "ZPV|1|VIP^贵宾"
    assert values("NTE[*]", msg) == ["NTE|1||复查", "NTE|1||空腹"]


# --------------------------------------------------------------------------------------------------
# scopes and segment groups


def test_each_obr_sees_only_its_own_obx_and_nte(msg: Hl7Reader) -> None:
    each = compile_path("OBR[*]")
    assert each.scope_kind is ScopeKind.SEGMENT
    orders = each.scopes(msg)
    assert len(orders) == 2 and all(isinstance(s, SegmentScope) for s in orders)
    first_order, second_order = orders
    assert values("OBX[*].5", first_order) == ["6.2", "128"]
    assert values("OBX[*].5", second_order) == ["5.4"]  # only the OBX under the second OBR
    assert first("OBX.5", second_order) == "5.4"
    assert first("OBX[2].5", second_order) is None
    assert first("NTE.3", first_order) == "复查"
    assert first("NTE.3", second_order) == "空腹"
    assert compile_path("OBX.5").count(first_order) == 2


def test_the_scope_segment_itself_by_name_or_relative(msg: Hl7Reader) -> None:
    each = compile_path("OBR[*]")
    second_order = each.scopes(msg)[1]
    assert first("OBR.4.1", second_order) == "GLU"
    assert first(".4.1", second_order, each) == "GLU"
    assert first(".4.1", second_order, ScopeKind.SEGMENT) == "GLU"
    assert first(".", second_order, each) == "OBR|2|ORD-2^HIS|LAB-2^LIS|GLU^血糖^L"
    assert values(".3[*].1", second_order, each) == ["LAB-2"]


def test_root_paths_reach_outside_the_group(msg: Hl7Reader) -> None:
    order = compile_path("OBR[*]").scopes(msg)[0]
    assert first("PID.3.1", order) is None  # PID is not in the group of an OBR
    assert first("/PID.3.1", order) == "200007"
    assert first("/PID.3[type=NI].1", order) == "11010519491231002X"
    assert values("/OBX[*].5", order) == ["6.2", "128", "5.4"]
    assert first("/MSH.10", order) == "LIS-0007"


def test_nested_groups_and_the_enclosing_segment(msg: Hl7Reader) -> None:
    each_obr = compile_path("OBR[*]")
    each_obx = compile_path("OBX[*]", each_obr)
    first_order = each_obr.scopes(msg)[0]
    results = each_obx.scopes(first_order)
    assert [first(".5", s, each_obx) for s in results] == ["6.2", "128"]
    assert [first("NTE.3", s) for s in results] == [None, "复查"]  # NTE follows the second OBX
    assert [first("OBR.4.1", s) for s in results] == ["CBC", "CBC"]  # the enclosing OBR


def test_each_repetition_and_relative_components(msg: Hl7Reader) -> None:
    each = compile_path("PID.3[*]")
    assert each.scope_kind is ScopeKind.REPETITION
    ids = each.scopes(msg)
    assert all(isinstance(s, RepetitionScope) for s in ids)
    assert [first(".1", s, each) for s in ids] == ["200007", "11010519491231002X", "320102198503120012"]
    assert [first(".5", s, each) for s in ids] == ["PI", "NI", "NI"]
    assert [first(".4.2", s, each) for s in ids] == [None, "2.16.156.10011.1.3", None]
    assert first(".", ids[0], each) == "200007^^^HOSP_B^PI"
    assert [first("PID.5.1", s) for s in ids] == ["赵"] * 3  # other paths read from the message


def test_relative_paths_need_their_kind_of_scope(msg: Hl7Reader) -> None:
    order = compile_path("OBR[*]").scopes(msg)[0]
    assert first(".3[2].1", order, ScopeKind.SEGMENT) is None
    assert first(".2.2", order, ScopeKind.SEGMENT) == "HIS"
    with pytest.raises(TypeError, match="relative to a segment"):
        first(".4.1", msg, ScopeKind.SEGMENT)
    with pytest.raises(TypeError, match="relative to a field repetition"):
        first(".1", order, ScopeKind.REPETITION)


def test_repetitions_of_iterated_segments_keep_their_segment(msg: Hl7Reader) -> None:
    each = compile_path("OBX[*].7[*]")
    ranges = each.scopes(msg)
    assert [first(".", s, each) for s in ranges] == ["4.0-10.0", "115-150", "110-160", "3.9-6.1"]
    assert [first("OBX.3.1", s) for s in ranges] == ["WBC", "HGB", "HGB", "GLU"]


def test_relative_paths_name_components_when_given_the_scope_path(msg: Hl7Reader) -> None:
    each_pid = compile_path("PID[*]")
    pid = each_pid.scopes(msg)[0]
    assert first(".3[type=NI].1", pid, each_pid) == "11010519491231002X"
    each_id = compile_path("PID.3[*]")
    assert parse(".4.2", each_id).datatype == "ST"
    with pytest.raises(DefinitionError, match="PID has 39 fields"):
        parse(".40", each_pid)


def test_scope_kinds() -> None:
    assert compile_path("OBR[*]").scope_kind is ScopeKind.SEGMENT
    assert compile_path("OBR").scope_kind is ScopeKind.SEGMENT
    assert compile_path("PID.3[*]").scope_kind is ScopeKind.REPETITION
    assert compile_path("PID.3[*].1").scope_kind is ScopeKind.MESSAGE
    assert compile_path(".", ScopeKind.REPETITION).scope_kind is ScopeKind.REPETITION
    assert compile_path(".16[*]", ScopeKind.SEGMENT).scope_kind is ScopeKind.REPETITION
    with pytest.raises(TypeError, match="cannot open a scope"):
        compile_path("PID.3.1").scopes(Hl7Reader(ORU))


# --------------------------------------------------------------------------------------------------
# the parsed form


def test_parsed_form() -> None:
    p = parse("OBX[*].5[2].1.3")
    assert (p.segment, p.segment_index, p.field, p.repetition, p.component, p.subcomponent) == (
        "OBX",
        EVERY,
        5,
        2,
        1,
        3,
    )
    assert p.iterates and p.stars == 1 and not p.relative and not p.root
    p = parse("/PID.3[type=NI].4")
    assert p.root and p.repetition == Select((5,), "NI", "[type=NI]") and p.datatype == "HD"
    assert parse("PID.3").datatype == "CX" and parse("PID.3.1").datatype == "ST"
    assert parse("PID.3[*].4.2").datatype == "ST" and parse("ZPV.2").datatype is None
    assert parse("OBR[*].16[*].1").stars == 2
    assert parse(".1", ScopeKind.REPETITION).relative
    assert parse("  PID.5.1 ").text == "PID.5.1"


# --------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("path", "scope", "message"),
    [
        ("", ScopeKind.MESSAGE, "empty path"),
        ("PID..3", ScopeKind.MESSAGE, "bad path 'PID..3': expected a field number after 'PID.' (column 5)"),
        ("PID.", ScopeKind.MESSAGE, "expected a field number after 'PID.' (column 5)"),
        (
            "pid.3",
            ScopeKind.MESSAGE,
            "expected a segment name (a capital letter, then 2 capitals or digits, "
            "e.g. PID) at the start (column 1)",
        ),
        ("PI.3", ScopeKind.MESSAGE, "expected a segment name"),
        (
            "PIDX.3",
            ScopeKind.MESSAGE,
            "expected '.' or '[' after 'PID' (column 4): segment names have 3 characters",
        ),
        ("PID-3", ScopeKind.MESSAGE, "expected '.' then a field number, or '[' after 'PID' (column 4)"),
        ("PID.0", ScopeKind.MESSAGE, "field numbers start at 1"),
        ("PID.03", ScopeKind.MESSAGE, "no leading zero, not '03'"),
        ("PID.45", ScopeKind.MESSAGE, "PID has 39 fields in HL7 v2.5, not 45"),
        ("MSH.22", ScopeKind.MESSAGE, "MSH has 21 fields in HL7 v2.5, not 22"),
        ("PID.3[", ScopeKind.MESSAGE, "'[' at column 6 is not closed by ']'"),
        (
            "PID.3[]",
            ScopeKind.MESSAGE,
            "expected a repetition number, * or name=value after 'PID.3[' (column 7)",
        ),
        (
            "PID.3[x]",
            ScopeKind.MESSAGE,
            "expected a repetition number (1, 2...), * or name=value after 'PID.3['",
        ),
        ("OBX[0].5", ScopeKind.MESSAGE, "segment numbers start at 1"),
        ("PID.3.1[2]", ScopeKind.MESSAGE, "components do not repeat"),
        ("PID.3.1.2[1]", ScopeKind.MESSAGE, "subcomponents do not repeat"),
        (
            "PID.3.1.2.3",
            ScopeKind.MESSAGE,
            "expected the end of the path after 'PID.3.1.2' (column 10): subcomponents are the deepest level",
        ),
        ("PID.3x", ScopeKind.MESSAGE, "unexpected 'x' after 'PID.3'"),
        ("PID.3.x", ScopeKind.MESSAGE, "expected a component number after 'PID.3.' (column 7)"),
        (
            "MSH.1.1",
            ScopeKind.MESSAGE,
            "MSH-1 holds the field separator: it has no repetitions or components",
        ),
        ("MSH.2[2]", ScopeKind.MESSAGE, "MSH-2 holds the encoding characters"),
        (
            "/.5",
            ScopeKind.SEGMENT,
            "expected a segment name (e.g. PID) after '/' (column 2): '/' starts a "
            "path from the message root",
        ),
        (".5", ScopeKind.MESSAGE, "a relative path (starting with '.') reads inside an each: scope"),
        (".1.2.3", ScopeKind.REPETITION, "unexpected '.' after '.1.2', expected the end of the path"),
        (".1[2]", ScopeKind.REPETITION, "components do not repeat"),
        (
            "PID.3[typ=NI]",
            ScopeKind.MESSAGE,
            "unknown component 'typ' of CX (PID-3) (did you mean 'type'?): id, check_digit, "
            "check_digit_scheme, authority, type, facility",
        ),
        (
            "PID.3[authority.universal=X]",
            ScopeKind.MESSAGE,
            "unknown subcomponent 'universal' of HD (component authority of PID-3)",
        ),
        (
            "PID.3[type.code=NI]",
            ScopeKind.MESSAGE,
            "component type of PID-3 is ID, which has no subcomponents",
        ),
        ("ZPV.2[type=NI]", ScopeKind.MESSAGE, "needs the data type of ZPV-2"),
        (".3[type=NI]", ScopeKind.SEGMENT, "needs the data type of this field"),
        ("OBX.5[type=X]", ScopeKind.MESSAGE, "OBX-5 has no fixed data type (varies)"),
        ("PID.8[value=M]", ScopeKind.MESSAGE, "PID-8 is IS, which has no components"),
        ("PID.3[1.2.3=X]", ScopeKind.MESSAGE, "a repetition is selected by component[.subcomponent]"),
        ("PID.3[Type=NI]", ScopeKind.MESSAGE, "expected a component number or name"),
        ("OBX[x=1].5", ScopeKind.MESSAGE, "a segment is selected by a field number"),
        ("OBX[30.1=X].5", ScopeKind.MESSAGE, "OBX has 19 fields in HL7 v2.5, not 30"),
        ("PID.3[type=]", ScopeKind.MESSAGE, "expected a value after 'PID.3[type=' (column 12)"),
        (
            "PID.3[=NI]",
            ScopeKind.MESSAGE,
            "expected a component name or number before '=' after 'PID.3[' (column 7)",
        ),
        ('PID.3[type="NI]', ScopeKind.MESSAGE, "the quoted value at column 12 is not closed"),
        ("PID.3[type=NI", ScopeKind.MESSAGE, "is not closed by ']'"),
    ],
)
def test_every_syntax_error_says_what_was_expected(path: str, scope: ScopeKind, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        compile_path(path, scope)
    assert message in info.value.message


def test_only_a_segment_or_repetition_path_opens_a_scope() -> None:
    with pytest.raises(DefinitionError, match=r"PID.3.1 cannot open a scope"):
        parse(".1", compile_path("PID.3.1"))


def test_z_segments_and_unknown_segments_take_any_field_number() -> None:
    assert parse("ZIN.75.2").field == 75
    assert parse("ZPV[*].3").iterates


# --------------------------------------------------------------------------------------------------
# hl7types: our table against hl7apy's v2.5 model


def test_field_types_and_counts_agree_with_hl7apy_v2_5() -> None:
    from hl7apy.v2_5 import segments

    for seg, types in hl7types.FIELD_TYPES.items():
        model = segments.SEGMENTS[seg][1]
        assert [f[1][2] for f in model] == list(types), seg
    for seg, count in hl7types.FIELD_COUNTS.items():
        assert len(segments.SEGMENTS[seg][1]) == count, seg
    assert set(segments.SEGMENTS) - set(hl7types.FIELD_COUNTS) == {"ANYHL7SEGMENT", "RDT"}


def test_component_types_agree_with_hl7apy_v2_5() -> None:
    from hl7apy.v2_5 import datatypes

    simple = {"DR_SIMPLE": "DR", "CQ_SIMPLE": "CQ"}
    for dt, comps in hl7types.COMPONENTS.items():
        model = datatypes.DATATYPES_STRUCTS[dt]
        assert [simple.get(c[1][2], c[1][2]) for c in model] == [t for _, t in comps], dt
        names = [name for name, _ in comps]
        assert len(set(names)) == len(names), dt


def test_component_lookups() -> None:
    assert hl7types.component_index("CX", "type") == 5
    assert hl7types.component_index("HD", "universal_id") == 2
    assert hl7types.component_index("CX", "nope") is None
    assert hl7types.component_type("CX", 4) == "HD"
    assert hl7types.field_type("PID", 3) == "CX" and hl7types.field_type("ZPV", 1) is None
    assert hl7types.field_count("PID") == 39 and hl7types.field_count("ZPV") is None
    assert "type" in hl7types.component_names("CX") and hl7types.component_names("ST") == ()
