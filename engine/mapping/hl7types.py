"""HL7 v2.5 facts the path language checks against: data-type components, field data types, field counts.

Why a table of our own: a mapping names components (``PID.3[type=NI]``, ``[authority.universal_id=...]``)
and a typo or a field number beyond the standard (``PID.45``) must be refused when the mapping is
loaded, not found missing in production. hl7apy carries the full v2.5 model but costs far too much to
consult per path; this module holds just the few facts needed, with snake_case component names of our
choosing (HL7 v2.5 Chapter 2A gives the components; Chapters 2, 3, 4, 6, 7 the segments). The test
suite checks the numbers and data types against hl7apy's v2.5 definitions.

Primitive data types (ST, ID, IS, NM, SI, DT, DTM, TX, FT...) have no components and are not listed
in ``COMPONENTS``; ``"varies"`` marks a field whose type is given by another field (OBX-5 by OBX-2,
QPD-3 by the query profile).
"""

from __future__ import annotations

__all__ = [
    "COMPONENTS",
    "FIELD_COUNTS",
    "FIELD_TYPES",
    "component_index",
    "component_names",
    "component_type",
    "field_count",
    "field_type",
]

# Composite data types of v2.5 (Chapter 2A): for each, its components in order as (name, data type).
COMPONENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "AUI": (("authorization_number", "ST"), ("date", "DT"), ("source", "ST")),
    "CE": (
        ("identifier", "ST"),
        ("text", "ST"),
        ("coding_system", "ID"),
        ("alternate_identifier", "ST"),
        ("alternate_text", "ST"),
        ("alternate_coding_system", "ID"),
    ),
    "CNE": (
        ("identifier", "ST"),
        ("text", "ST"),
        ("coding_system", "ID"),
        ("alternate_identifier", "ST"),
        ("alternate_text", "ST"),
        ("alternate_coding_system", "ID"),
        ("coding_system_version", "ST"),
        ("alternate_coding_system_version", "ST"),
        ("original_text", "ST"),
    ),
    "CNN": (
        ("id", "ST"),
        ("family", "ST"),
        ("given", "ST"),
        ("middle", "ST"),
        ("suffix", "ST"),
        ("prefix", "ST"),
        ("degree", "IS"),
        ("source_table", "IS"),
        ("authority_namespace", "IS"),
        ("authority_universal_id", "ST"),
        ("authority_universal_id_type", "ID"),
    ),
    "CP": (
        ("price", "MO"),
        ("price_type", "ID"),
        ("from_value", "NM"),
        ("to_value", "NM"),
        ("range_units", "CE"),
        ("range_type", "ID"),
    ),
    "CQ": (("quantity", "NM"), ("units", "CE")),
    "CWE": (
        ("identifier", "ST"),
        ("text", "ST"),
        ("coding_system", "ID"),
        ("alternate_identifier", "ST"),
        ("alternate_text", "ST"),
        ("alternate_coding_system", "ID"),
        ("coding_system_version", "ST"),
        ("alternate_coding_system_version", "ST"),
        ("original_text", "ST"),
    ),
    "CX": (
        ("id", "ST"),
        ("check_digit", "ST"),
        ("check_digit_scheme", "ID"),
        ("authority", "HD"),
        ("type", "ID"),
        ("facility", "HD"),
        ("effective", "DT"),
        ("expiration", "DT"),
        ("jurisdiction", "CWE"),
        ("agency", "CWE"),
    ),
    "DLD": (("discharge_location", "IS"), ("effective", "TS")),
    "DLN": (("license_number", "ST"), ("issuing_state", "IS"), ("expiration", "DT")),
    "DR": (("range_start", "TS"), ("range_end", "TS")),
    "EI": (("entity_id", "ST"), ("namespace", "IS"), ("universal_id", "ST"), ("universal_id_type", "ID")),
    "EIP": (("placer", "EI"), ("filler", "EI")),
    "ELD": (("segment_id", "ST"), ("segment_sequence", "NM"), ("field_position", "NM"), ("error_code", "CE")),
    "ERL": (
        ("segment_id", "ST"),
        ("segment_sequence", "NM"),
        ("field_position", "NM"),
        ("field_repetition", "NM"),
        ("component", "NM"),
        ("subcomponent", "NM"),
    ),
    "FC": (("financial_class", "IS"), ("effective", "TS")),
    "FN": (
        ("surname", "ST"),
        ("own_surname_prefix", "ST"),
        ("own_surname", "ST"),
        ("partner_surname_prefix", "ST"),
        ("partner_surname", "ST"),
    ),
    "HD": (("namespace", "IS"), ("universal_id", "ST"), ("universal_id_type", "ID")),
    "JCC": (("job_code", "IS"), ("job_class", "IS"), ("job_description", "TX")),
    "MO": (("quantity", "NM"), ("denomination", "ID")),
    "MOC": (("amount", "MO"), ("charge_code", "CE")),
    "MSG": (("message_code", "ID"), ("trigger_event", "ID"), ("message_structure", "ID")),
    "NDL": (
        ("name", "CNN"),
        ("start", "TS"),
        ("end", "TS"),
        ("point_of_care", "IS"),
        ("room", "IS"),
        ("bed", "IS"),
        ("facility", "HD"),
        ("status", "IS"),
        ("type", "IS"),
        ("building", "IS"),
        ("floor", "IS"),
    ),
    "PL": (
        ("point_of_care", "IS"),
        ("room", "IS"),
        ("bed", "IS"),
        ("facility", "HD"),
        ("status", "IS"),
        ("type", "IS"),
        ("building", "IS"),
        ("floor", "IS"),
        ("description", "ST"),
        ("location_id", "EI"),
        ("authority", "HD"),
    ),
    "PRL": (("parent_observation", "CE"), ("parent_sub_id", "ST"), ("parent_value", "TX")),
    "PT": (("processing_id", "ID"), ("processing_mode", "ID")),
    "SAD": (("street", "ST"), ("street_name", "ST"), ("dwelling_number", "ST")),
    "SPS": (
        ("source", "CWE"),
        ("additives", "CWE"),
        ("collection_method", "TX"),
        ("body_site", "CWE"),
        ("site_modifier", "CWE"),
        ("collection_method_modifier", "CWE"),
        ("role", "CWE"),
    ),
    "SRT": (("sort_by_field", "ST"), ("sequencing", "ID")),
    "TQ": (
        ("quantity", "CQ"),
        ("interval", "RI"),
        ("duration", "ST"),
        ("start", "TS"),
        ("end", "TS"),
        ("priority", "ST"),
        ("condition", "ST"),
        ("text", "TX"),
        ("conjunction", "ID"),
        ("order_sequencing", "OSD"),
        ("occurrence_duration", "CE"),
        ("total_occurrences", "NM"),
    ),
    "TS": (("time", "DTM"), ("precision", "ID")),
    "VID": (("version_id", "ID"), ("internationalization_code", "CE"), ("international_version_id", "CE")),
    "XAD": (
        ("street", "SAD"),
        ("other_designation", "ST"),
        ("city", "ST"),
        ("state", "ST"),
        ("zip", "ST"),
        ("country", "ID"),
        ("type", "ID"),
        ("other_geographic", "ST"),
        ("county", "IS"),
        ("census_tract", "IS"),
        ("representation", "ID"),
        ("validity_range", "DR"),
        ("effective", "TS"),
        ("expiration", "TS"),
    ),
    "XCN": (
        ("id", "ST"),
        ("family", "FN"),
        ("given", "ST"),
        ("middle", "ST"),
        ("suffix", "ST"),
        ("prefix", "ST"),
        ("degree", "IS"),
        ("source_table", "IS"),
        ("authority", "HD"),
        ("name_type", "ID"),
        ("check_digit", "ST"),
        ("check_digit_scheme", "ID"),
        ("type", "ID"),
        ("facility", "HD"),
        ("representation", "ID"),
        ("context", "CE"),
        ("validity_range", "DR"),
        ("assembly_order", "ID"),
        ("effective", "TS"),
        ("expiration", "TS"),
        ("professional_suffix", "ST"),
        ("jurisdiction", "CWE"),
        ("agency", "CWE"),
    ),
    "XON": (
        ("name", "ST"),
        ("name_type", "IS"),
        ("id_number", "NM"),
        ("check_digit", "NM"),
        ("check_digit_scheme", "ID"),
        ("authority", "HD"),
        ("type", "ID"),
        ("facility", "HD"),
        ("representation", "ID"),
        ("id", "ST"),
    ),
    "XPN": (
        ("family", "FN"),
        ("given", "ST"),
        ("middle", "ST"),
        ("suffix", "ST"),
        ("prefix", "ST"),
        ("degree", "IS"),
        ("type", "ID"),
        ("representation", "ID"),
        ("context", "CE"),
        ("validity_range", "DR"),
        ("assembly_order", "ID"),
        ("effective", "TS"),
        ("expiration", "TS"),
        ("professional_suffix", "ST"),
    ),
    "XTN": (
        ("number", "ST"),
        ("use", "ID"),
        ("equipment", "ID"),
        ("email", "ST"),
        ("country_code", "NM"),
        ("area_code", "NM"),
        ("local_number", "NM"),
        ("extension", "NM"),
        ("any_text", "ST"),
        ("extension_prefix", "ST"),
        ("speed_dial", "ST"),
        ("unformatted", "ST"),
    ),
}


def _types(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Data type of each field (field 1 first) of the segments mappings read and write, HL7 v2.5.
FIELD_TYPES: dict[str, tuple[str, ...]] = {
    # Chapter 2 (control): MSH-1 and MSH-2 are the separators themselves (ST)
    "MSH": _types("ST ST HD HD HD HD TS ST MSG ST PT VID NM ST ID ID ID ID CE ID EI"),
    "MSA": _types("ID ST ST NM ID CE"),
    "ERR": _types("ELD ERL CWE ID CWE ST TX TX IS CWE CWE XTN"),
    # Chapter 3 (patient administration)
    "EVN": _types("ID TS TS IS XCN TS HD"),
    "PID": _types(
        "SI CX CX CX XPN XPN TS IS XPN CE XAD IS XTN XTN CE CE CE CX ST DLN CX CE ST ID NM CE CE CE TS ID "
        "ID IS TS HD CE CE ST CE CWE"
    ),
    "PD1": _types("IS IS XON XCN IS IS IS IS ID CX CE ID DT XON CE IS DT DT IS IS IS"),
    "NK1": _types(
        "SI XPN CE XAD XTN XTN CE DT DT ST JCC CX XON CE IS TS IS IS CE CE IS CE ID IS CE XPN CE CE CE XPN "
        "XTN XAD CX IS CE IS ST ST IS"
    ),
    "PV1": _types(
        "SI IS PL IS CX PL XCN XCN XCN IS PL IS IS IS IS IS XCN IS CX FC IS IS IS IS DT NM NM IS IS DT IS "
        "NM NM IS DT IS DLD CE IS IS IS PL PL TS TS NM NM NM NM CX IS XCN"
    ),
    "PV2": _types(
        "PL CE CE CE ST ST IS TS TS NM NM ST XCN DT ID IS DT IS ID NM IS ID XON IS IS DT IS DT DT CE IS ID "
        "TS ID ID ID ID CE CE CE CE CE IS IS CE DT TS TS IS"
    ),
    "MRG": _types("CX CX CX CX CX CX XPN"),
    "AL1": _types("SI CE CE CE ST DT"),
    "DG1": _types("SI ID CE ST TS IS CE CE ID IS CE NM CP ST ID XCN IS ID TS EI ID"),
    # Chapter 4 (orders) and 7 (observations)
    "ORC": _types(
        "ID EI EI EI ID ID TQ EIP TS XCN XCN XCN PL XTN TS CE CE CE XCN CE XON XAD XTN XAD CWE CWE TS CWE "
        "CWE CNE"
    ),
    "OBR": _types(
        "SI EI EI CE ID TS TS TS CQ XCN ID CE ST TS SPS XCN XTN ST ST ST ST TS MOC ID ID PRL TQ XCN EIP ID "
        "CE NDL NDL NDL NDL TS NM CE CE CE ID ID CE CE CE CE CE CWE IS"
    ),
    "OBX": _types("SI ID CE ST varies CE ST IS NM ID ID TS ST TS CE XCN CE EI TS"),
    # Chapter 6 (financial management)
    "IN1": _types(
        "SI CE CX XON XAD XPN XTN ST XON CX XON DT DT AUI IS XPN CE TS XAD IS IS ST ID DT ID DT IS ST TS XCN "
        "IS IS NM NM IS ST CP CP NM CP CP CE IS XAD ST IS IS IS CX IS DT ST IS"
    ),
    # Chapter 5 (query)
    "QPD": _types("CE ST varies"),
    "RCP": _types("ID CQ CE TS ID SRT ID"),
    "QAK": _types("ST ID CE NM NM NM"),
}

# Number of fields of every standard v2.5 segment (RDT, whose fields vary by query, is left out).
FIELD_COUNTS: dict[str, int] = {
    "ABS": 14,
    "ACC": 11,
    "ADD": 1,
    "AFF": 5,
    "AIG": 14,
    "AIL": 12,
    "AIP": 12,
    "AIS": 12,
    "AL1": 6,
    "APR": 5,
    "ARQ": 25,
    "AUT": 10,
    "BHS": 12,
    "BLC": 2,
    "BLG": 4,
    "BPO": 14,
    "BPX": 21,
    "BTS": 3,
    "BTX": 19,
    "CDM": 13,
    "CER": 31,
    "CM0": 11,
    "CM1": 3,
    "CM2": 4,
    "CNS": 6,
    "CON": 25,
    "CSP": 4,
    "CSR": 16,
    "CSS": 3,
    "CTD": 7,
    "CTI": 3,
    "DB1": 8,
    "DG1": 21,
    "DRG": 11,
    "DSC": 2,
    "DSP": 5,
    "ECD": 5,
    "ECR": 3,
    "EDU": 9,
    "EQL": 4,
    "EQP": 5,
    "EQU": 5,
    "ERQ": 3,
    "ERR": 12,
    "EVN": 7,
    "FAC": 12,
    "FHS": 12,
    "FT1": 31,
    "FTS": 2,
    "GOL": 21,
    "GP1": 5,
    "GP2": 14,
    "GT1": 57,
    "IAM": 20,
    "IIM": 15,
    "IN1": 53,
    "IN2": 72,
    "IN3": 25,
    "INV": 20,
    "IPC": 9,
    "ISD": 3,
    "LAN": 4,
    "LCC": 4,
    "LCH": 5,
    "LDP": 12,
    "LOC": 9,
    "LRL": 6,
    "MFA": 6,
    "MFE": 5,
    "MFI": 6,
    "MRG": 7,
    "MSA": 6,
    "MSH": 21,
    "NCK": 1,
    "NDS": 4,
    "NK1": 39,
    "NPU": 2,
    "NSC": 9,
    "NST": 15,
    "NTE": 4,
    "OBR": 49,
    "OBX": 19,
    "ODS": 4,
    "ODT": 3,
    "OM1": 47,
    "OM2": 10,
    "OM3": 7,
    "OM4": 14,
    "OM5": 3,
    "OM6": 2,
    "OM7": 24,
    "ORC": 30,
    "ORG": 12,
    "OVR": 5,
    "PCR": 23,
    "PD1": 21,
    "PDA": 9,
    "PDC": 15,
    "PEO": 25,
    "PES": 13,
    "PID": 39,
    "PR1": 20,
    "PRA": 12,
    "PRB": 25,
    "PRC": 18,
    "PRD": 9,
    "PSH": 14,
    "PTH": 6,
    "PV1": 52,
    "PV2": 49,
    "QAK": 6,
    "QID": 2,
    "QPD": 3,
    "QRD": 12,
    "QRF": 10,
    "QRI": 3,
    "RCP": 7,
    "RDF": 2,
    "RF1": 11,
    "RGS": 3,
    "RMI": 3,
    "ROL": 12,
    "RQ1": 7,
    "RQD": 10,
    "RXA": 26,
    "RXC": 9,
    "RXD": 33,
    "RXE": 44,
    "RXG": 26,
    "RXO": 28,
    "RXR": 6,
    "SAC": 44,
    "SCH": 27,
    "SFT": 6,
    "SID": 4,
    "SPM": 29,
    "SPR": 4,
    "STF": 38,
    "TCC": 14,
    "TCD": 8,
    "TQ1": 14,
    "TQ2": 10,
    "TXA": 23,
    "UB1": 23,
    "UB2": 17,
    "URD": 7,
    "URS": 9,
    "VAR": 6,
    "VTQ": 5,
}

_INDEX: dict[str, dict[str, int]] = {
    dt: {name: i for i, (name, _) in enumerate(comps, 1)} for dt, comps in COMPONENTS.items()
}


def field_count(segment: str) -> int | None:
    """How many fields ``segment`` has in v2.5; None for Z-segments and segments v2.5 does not define."""
    return FIELD_COUNTS.get(segment)


def field_type(segment: str, field: int) -> str | None:
    """The v2.5 data type of ``segment``-``field`` (``"CX"`` for PID-3), or None when not in the table."""
    types = FIELD_TYPES.get(segment)
    if types is None or not 1 <= field <= len(types):
        return None
    return types[field - 1]


def component_names(datatype: str) -> tuple[str, ...]:
    """The snake_case component names of a composite data type, in order; () for a primitive one."""
    return tuple(name for name, _ in COMPONENTS.get(datatype, ()))


def component_index(datatype: str, name: str) -> int | None:
    """The 1-based position of component ``name`` of ``datatype`` (``("CX", "type")`` → 5), or None."""
    found = _INDEX.get(datatype)
    return None if found is None else found.get(name)


def component_type(datatype: str, position: int) -> str | None:
    """The data type of component ``position`` (1-based) of ``datatype``, or None when unknown."""
    comps = COMPONENTS.get(datatype)
    if comps is None or not 1 <= position <= len(comps):
        return None
    return comps[position - 1][1]
