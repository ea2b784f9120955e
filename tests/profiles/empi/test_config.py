"""The ``empi:`` section: a hospital's 组织机构代码 names one domain, whose V3 patient ids resolve to it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from profiles.empi.config import EmpiConfig
from profiles.empi.domains import V3_PATIENT_ID, Domains

A = {
    "id": "hospital-a",
    "namespace": "HOSP_A",
    "oid": "1.2.156.112604.1.1",
    "institution": "12320100MB1234567X",
}
B = {"id": "hospital-b", "namespace": "HOSP_B", "oid": "1.2.156.112605.1.1"}


def test_a_v3_patient_id_resolves_to_the_domain_of_its_institution() -> None:
    domains = Domains(EmpiConfig.model_validate({"domains": [A, B]}))
    assert domains.resolve("12320100MB1234567X", V3_PATIENT_ID) == "hospital-a"
    assert domains.resolve("12320100MB7654321Y", V3_PATIENT_ID) is None  # an institution nobody configured
    assert domains.resolve("HOSP_B", "1.2.156.112605.1.1") == "hospital-b"


def test_one_institution_names_one_domain() -> None:
    with pytest.raises(ValidationError, match="is both domain hospital-a and domain hospital-b"):
        EmpiConfig.model_validate({"domains": [A, {**B, "institution": A["institution"]}]})
