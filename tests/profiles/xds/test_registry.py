"""ITI-42 registration into the registry tables, on SQLite and PostgreSQL: what the registry checks
against what it holds (patients, uniqueIds, association targets), all or nothing."""

from __future__ import annotations

from lxml import etree
from sqlalchemy import Engine, select

from ihe._ebxml import HAS_MEMBER
from profiles.empi.actor import EmpiActor
from profiles.xds.patients import AffinityPatients
from profiles.xds.registry import APPROVED, DEPRECATED, STATUS_URN
from profiles.xds.schema import associations, document_codes, documents, submission_sets
from tests.ihe.test_ebxml import WITH_REPOSITORY_SLOTS
from tests.profiles.conftest import NATIONAL, NID_A, A, Pix
from tests.profiles.xds.conftest import PATIENT, count, register, second_version


def test_a_submission_is_registered_with_uuids_for_its_symbolic_ids(db: Engine) -> None:
    result = register(db, WITH_REPOSITORY_SLOTS)
    assert result.errors == []
    document_uuid = result.uuids["Document01"]
    assert document_uuid.startswith("urn:uuid:")
    with db.connect() as conn:
        (entry,) = conn.execute(select(documents)).all()
        assert (entry.entry_uuid, entry.lid, entry.status) == (document_uuid, document_uuid, APPROVED)
        assert (entry.patient_id, entry.person_id, entry.hash) == (
            PATIENT,
            4242,
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # stored lower case
        )
        assert entry.creation_time == "20051224000000" and entry.type_code == "34108-1^^LOINC"
        codes = conn.execute(select(document_codes.c.attribute, document_codes.c.code)).all()
        confidentiality = "1.3.6.1.4.1.21367.2006.7.101^^Connect-a-thon confidentialityCodes"
        assert [tuple(c) for c in codes] == [("confidentialityCode", confidentiality)]
        (member,) = conn.execute(select(associations)).all()
        assert (member.type, member.source_uuid, member.target_uuid) == (
            HAS_MEMBER,
            result.uuids["SubmissionSet01"],
            document_uuid,
        )
        stored = etree.fromstring(entry.metadata)
        assert stored.get("id") == document_uuid and stored.get("status") == STATUS_URN + APPROVED
        assert all(e.get("id", "urn:uuid:").startswith("urn:uuid:") for e in stored.iter())
        assert {e.get("classifiedObject") for e in stored.iter("{*}Classification")} == {document_uuid}


def test_an_unknown_patient_registers_nothing(db: Engine) -> None:
    result = register(db, WITH_REPOSITORY_SLOTS.replace("SELF-5^^^", "NOBODY-1^^^"))
    assert [(e.code, e.location) for e in result.errors] == [("XDSUnknownPatientId", "SubmissionSet01")]
    with db.connect() as conn:
        assert count(conn, documents) == count(conn, submission_sets) == count(conn, associations) == 0


def test_the_same_document_again_is_accepted_once_and_a_different_one_is_refused(db: Engine) -> None:
    assert register(db, WITH_REPOSITORY_SLOTS).errors == []
    again = register(db, second_version(WITH_REPOSITORY_SLOTS, 1).replace("9999.321", "9999.32"))
    assert again.errors == [] and again.resubmitted == ["1.3.6.1.4.1.21367.2005.3.9999.32"]
    changed = second_version(WITH_REPOSITORY_SLOTS, 2).replace("9999.322", "9999.32")
    changed = changed.replace("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "0" * 40)
    refused = register(db, changed)
    assert [(e.code, e.location) for e in refused.errors] == [("XDSNonIdenticalHash", "Document01")]
    duplicate_set = register(db, WITH_REPOSITORY_SLOTS.replace("9999.32", "9999.329"))
    assert [e.code for e in duplicate_set.errors] == ["XDSDuplicateUniqueIdInRegistry"]
    with db.connect() as conn:
        assert count(conn, documents) == 1 and count(conn, submission_sets) == 2


def test_a_replacement_deprecates_its_target_which_cannot_be_replaced_twice(db: Engine) -> None:
    first = register(db, WITH_REPOSITORY_SLOTS).uuids["Document01"]
    replaced = register(db, second_version(WITH_REPOSITORY_SLOTS, 1, replaces=first))
    assert replaced.errors == [] and replaced.deprecated == [first]
    with db.connect() as conn:
        status = dict(conn.execute(select(documents.c.entry_uuid, documents.c.status)).all())
    assert status == {first: DEPRECATED, replaced.uuids["Document01"]: APPROVED}
    twice = register(db, second_version(WITH_REPOSITORY_SLOTS, 2, replaces=first))
    assert [(e.code, e.location) for e in twice.errors] == [("XDSRegistryDeprecatedDocumentError", "rplc2")]
    nowhere = "urn:uuid:00000000-0000-4000-8000-000000000000"
    dangling = register(db, second_version(WITH_REPOSITORY_SLOTS, 3, replaces=nowhere))
    assert [e.code for e in dangling.errors] == ["XDSRegistryError"]


def relating(text: str, n: int, kind: str, target: str) -> str:
    """The example as another submission whose new document relates to ``target`` by ``kind``."""
    return second_version(text, n).replace(
        "</rim:RegistryObjectList>",
        f'<rim:Association id="rel{n}" associationType="urn:ihe:iti:2007:AssociationType:{kind}" '
        f'sourceObject="Document01" targetObject="{target}"/></rim:RegistryObjectList>',
    )


def test_addenda_transforms_and_signatures_keep_their_target_and_xfrm_rplc_replaces_it(db: Engine) -> None:
    original = register(db, WITH_REPOSITORY_SLOTS).uuids["Document01"]
    for n, kind in enumerate(("APND", "XFRM", "signs"), start=1):
        related = register(db, relating(WITH_REPOSITORY_SLOTS, n, kind, original))
        assert related.errors == [] and related.deprecated == [], kind
        with db.connect() as conn:
            stored = conn.execute(
                select(associations.c.type).where(associations.c.entry_uuid == related.uuids[f"rel{n}"])
            ).scalar_one()
        assert stored == f"urn:ihe:iti:2007:AssociationType:{kind}"  # the full URN, as queries ask for it
    replaced = register(db, relating(WITH_REPOSITORY_SLOTS, 4, "XFRM_RPLC", original))
    assert replaced.deprecated == [original]
    # a deprecated entry takes no addendum, and no second replacement
    late = register(db, relating(WITH_REPOSITORY_SLOTS, 5, "APND", original))
    assert [(e.code, e.location) for e in late.errors] == [("XDSRegistryDeprecatedDocumentError", "rel5")]
    with db.connect() as conn:
        assert count(conn, documents) == 5  # the original, three related, the transform; not the late one


def with_folder(text: str) -> str:
    """The example with a Folder holding its document (SubmissionSet -> Folder -> DocumentEntry)."""
    folder = (
        '<rim:RegistryPackage id="Folder01"><rim:Name><rim:LocalizedString value="出院随访"/></rim:Name>'
        '<rim:Classification id="clf" classificationScheme="urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5" '
        'classifiedObject="Folder01" nodeRepresentation="Discharge">'
        '<rim:Slot name="codingScheme"><rim:ValueList>'
        "<rim:Value>Connect-a-thon folderCodeList</rim:Value></rim:ValueList></rim:Slot></rim:Classification>"
        '<rim:ExternalIdentifier id="eif1" registryObject="Folder01" identificationScheme='
        '"urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a" '
        'value="SELF-5^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO"/>'
        '<rim:ExternalIdentifier id="eif2" registryObject="Folder01" identificationScheme='
        '"urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a" value="1.3.6.1.4.1.21367.2005.3.9999.40"/>'
        "</rim:RegistryPackage>"
        '<rim:Classification id="clf2" classifiedObject="Folder01" '
        'classificationNode="urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"/>'
        f'<rim:Association id="asf1" associationType="{HAS_MEMBER}" '
        'sourceObject="SubmissionSet01" targetObject="Folder01"/>'
        f'<rim:Association id="asf2" associationType="{HAS_MEMBER}" '
        'sourceObject="Folder01" targetObject="Document01"/>'
    )
    return text.replace("</rim:RegistryObjectList>", folder + "</rim:RegistryObjectList>")


def test_a_folder_is_registered_and_holds_the_replacement_of_its_document(db: Engine) -> None:
    first = register(db, with_folder(WITH_REPOSITORY_SLOTS))
    assert first.errors == []
    folder = first.uuids["Folder01"]
    replaced = register(db, second_version(WITH_REPOSITORY_SLOTS, 1, replaces=first.uuids["Document01"]))
    assert replaced.errors == []
    with db.connect() as conn:
        held = set(
            conn.execute(
                select(associations.c.target_uuid).where(
                    associations.c.source_uuid == folder, associations.c.type == HAS_MEMBER
                )
            ).scalars()
        )
    assert held == {first.uuids["Document01"], replaced.uuids["Document01"]}
    again = register(db, with_folder(second_version(WITH_REPOSITORY_SLOTS, 2)))
    assert [e.code for e in again.errors] == ["XDSDuplicateUniqueIdInRegistry"]  # the folder's uniqueId


async def test_affinity_patient_ids_are_the_empi_s_active_identifiers(pix: Pix) -> None:
    """Over the EMPI the sample channels feed: by the national ID, by a hospital's id; unknown after A40."""
    await pix.feed(f"PID|1||A1^^^{A}^PI~{NID_A}^^^{NATIONAL}^NI||欧阳^明轩||19850312|M")
    await pix.feed(f"PID|1||A2^^^{A}^PI||王^磊||19700115|M")
    services = pix.rt.services
    assert services is not None
    manager = EmpiActor.of(services).manager
    patients = AffinityPatients(manager.domains, manager.index)
    with services.db.connect() as conn:
        by_card = patients.person_of(conn, f"{NID_A}^^^&2.16.156.10011.1.3&ISO")
        by_local = patients.person_of(conn, "A1^^^&1.2.156.112604.1.1&ISO")
        assert by_card is not None and by_card == by_local
        assert patients.person_of(conn, "A9^^^&1.2.156.112604.1.1&ISO") is None  # not fed
        assert patients.person_of(conn, "A1^^^&1.2.3.4&ISO") is None  # a domain nobody configured
        assert patients.person_of(conn, "A1^^^HOSP_A") is None  # not an affinity-domain CX
    await pix.feed(f"PID|1||A2^^^{A}^PI||王^磊||19700115|M", event="A40", mrg=f"A1^^^{A}")
    with services.db.connect() as conn:
        assert patients.person_of(conn, "A1^^^&1.2.156.112604.1.1&ISO") is None  # subsumed by the A40
        assert patients.person_of(conn, "A2^^^&1.2.156.112604.1.1&ISO") is not None
