"""PDQ Supplier over the EMPI: ITI-21 demographic queries, incremental responses, cancel.

ITI TF-2 §3.21. One PID per *person* (the EMPI's patient), PID-3 holding every identifier of the
person in the domains asked for (QPD-8; all of them, the national ID among them, when QPD-8 is
empty); a person with none in those domains is left out (case 2). The demographics returned are
each field from the person's most recently updated record that has it (the name in Hanzi when any
record has one).

Parameters supported (QPD-3), matched against the active records:

=============================== ====================================================
``@PID.3.1`` + ``@PID.3.4[.n]`` an identifier in a domain (namespace and/or OID)
``@PID.5`` / ``.5.1`` / ``.5.2`` whole name / family / given: Hanzi as written, or pinyin
                                 (``ZHANG`` finds 张); a trailing ``*`` is a prefix match
``@PID.6`` / ``.6.1``             mother's maiden name (Pediatric Demographics option), whole,
                                 Hanzi or pinyin, trailing ``*`` a prefix
``@PID.7``                      birth date (YYYYMMDD; a time part is ignored)
``@PID.8``                      sex, HL7 table 0001 (M, F, U...) or GB/T 2261.1 digits
``@PID.11`` / ``.11.1``          street line of the first address (XAD-1)
``@PID.11.3`` / ``.4`` / ``.5``  city / province / postal code; ``.6`` country; ``*`` a prefix
``@PID.13``                     phone number (digits compared: +86 and spaces ignored)
``@PID.18`` / ``.18.1``          patient account number; ``@PID.18.4[.1|.2]`` its authority
``@PID.19``                     national ID-card number
=============================== ====================================================

Any other parameter (PD1, ``@PID.11.7`` address type, ``@PID.10``...) is answered AE 102 naming it,
not silently ignored: a consumer must not believe a filter was applied when it was not. Address
parameters compare the record's first address only (the one its feed sent first).

Continuations: more hits than RCP-2 asks for leave the rest in ``empi_continuations`` behind a
random pointer (DSC-1), bound to the requester (MSH-3^MSH-4) and the query's parameters, kept
``CONTINUATION_MINUTES``; an unknown, expired or foreign pointer is AE 204 at ``DSC^1^1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, or_, select

from engine.errors import MessageError
from engine.mapping import gb11643
from ihe.iti9 import QualifiedId
from ihe.iti21 import PdqAnswer, PdqParameter, PdqPatient, PdqQuery
from profiles.empi.domains import NATIONAL, DomainConflict, Domains
from profiles.empi.matching import name_key, phone_key, pinyin_key
from profiles.empi.schema import continuations, persons, records

__all__ = ["CONTINUATION_MINUTES", "MAX_HITS", "PdqSupplier"]

MAX_HITS = 1000  # persons one query may find; more is a query too broad to be useful
CONTINUATION_MINUTES = 10
_SEX = {"M": "1", "F": "2", "U": "0", "O": "9", "A": "9", "N": "9", "0": "0", "1": "1", "2": "2", "9": "9"}
_HL7_SEX = {"1": "M", "2": "F", "0": "U", "9": "U"}
# PID.11 (XAD) components that are query parameters, and the column of the first address for each;
# @PID.11 alone is the street line, its first component
_ADDRESS = {None: "street", 1: "street", 3: "city", 4: "province", 5: "postal_code", 6: "country"}
# PID.5 (XPN) component: (the column in Hanzi, the column in pinyin)
_NAME_COLUMNS = {
    None: ("name_key", "name_pinyin"),
    1: ("family", "family_pinyin"),
    2: ("given", "given_pinyin"),
}
_Shape = tuple[str, ...]  # one parameter's condition: its kind, column and bound name
_FIND: dict[tuple[tuple[_Shape, ...], tuple[bool, bool] | None], Any] = {}
# a person's active records with its national ID, built once (it runs for every hit returned); only
# the columns an answer uses: a result's columns cost psycopg and SQLAlchemy work each
_PERSON_RECORDS = (
    select(
        records.c.domain,
        records.c.value,
        records.c.updated_at,
        records.c.birth_date,
        records.c.sex,
        records.c.demographics,
        persons.c.national_id.label("person_national_id"),
    )
    .join(persons, persons.c.id == records.c.person_id)
    .where(records.c.person_id == bindparam("p"), records.c.status == "active")
    .order_by(records.c.domain, records.c.value)
)


class PdqSupplier:
    def __init__(self, db: Engine, domains: Domains) -> None:
        self.db = db
        self.domains = domains

    def search(self, query: PdqQuery) -> tuple[PdqAnswer, Callable[[Connection], None] | None]:
        """The answer, read on a connection of its own, and what it must write (None: nothing): the
        continuation it leaves or consumes, written in the commit that records the answer."""
        answer = PdqAnswer()
        wanted, answer.errors = self.domains.returned(query.domains, 8)  # case 3
        if answer.errors:
            return answer, None
        writes: list[Callable[[Connection], None]] = []
        with self.db.connect() as conn:
            if query.pointer:
                ids, total = self._continue(conn, query)
                writes.append(self._forget(query.pointer))
            else:
                ids = self._find(conn, query, wanted)
                total = len(ids)
            count = query.count or len(ids)
            page, rest = ids[:count], ids[count:]
            if rest:
                answer.pointer, keep = self._keep(query, rest, total)
                writes.append(keep)
            answer.total, answer.remaining = total, len(rest)
            answer.patients = [p for p in (self._patient(conn, pid, wanted) for pid in page) if p is not None]

        def write(conn: Connection) -> None:
            for w in writes:
                w(conn)

        return answer, write if writes else None

    def cancel(self, conn: Connection, requester: str, tag: str) -> int:
        """Forget the continuations of a query (QCN^J01); how many there were."""
        result = conn.execute(
            delete(continuations).where(
                continuations.c.requester == requester[:200], continuations.c.query_tag == tag[:64]
            )
        )
        return int(result.rowcount or 0)

    # -- matching -----------------------------------------------------------------------------------
    # A query's statement depends only on its parameters' shape (which fields, prefix or exact,
    # Hanzi or pinyin, which kind of domain), never on their values, which are bound: it is built
    # once per shape (``_FIND``) rather than once per query, which cost more than running it.
    def _find(self, conn: Connection, query: PdqQuery, wanted: set[str] | None) -> list[int]:
        authority = [p for p in query.parameters if p.segment == "PID" and p.field == 3 and p.component == 4]
        shape: list[_Shape] = []
        values: dict[str, Any] = {}
        for p in query.parameters:
            key, bound = self._condition(p, authority)
            shape.append(key)
            values |= bound
        others = sorted(wanted - {NATIONAL}) if wanted is not None else []
        domains = None if wanted is None else (bool(others), NATIONAL in wanted)
        if others:
            values["domains"] = others
        statement = _FIND.get((tuple(shape), domains))
        if statement is None:
            statement = _find_statement(tuple(shape), domains)
            if len(_FIND) < 1024:
                _FIND[(tuple(shape), domains)] = statement
        return [int(row.person_id) for row in conn.execute(statement, values)]

    def _condition(self, p: PdqParameter, authority: list[PdqParameter]) -> tuple[_Shape, dict[str, Any]]:
        """The shape of one parameter's condition (``_where`` builds it) and its bound value."""
        where = f"QPD^1^3^{p.repetition}"
        name = f"v{p.repetition}"
        if p.segment != "PID":
            raise MessageError(
                f"{p.name}: only PID fields are query parameters here", hl7_code="102", location=where
            )
        if p.field == 3 and p.component in (None, 1):
            return self._identifier(p, authority, name)
        if p.field == 3 and p.component == 4:
            return ("none",), {}  # read with @PID.3.1
        if p.field in (5, 6) and p.component in (None, 1, 2) and p.subcomponent in (None, 1):
            return self._name(p, name)
        if p.field == 7 and p.component in (None, 1):
            return ("eq", "birth_date", name), {name: _date(p, where)}
        if p.field == 8 and p.component is None:
            sex = _SEX.get(p.value.upper())
            if sex is None:
                raise MessageError(
                    f"{p.name}: {p.value!r} is not a sex code (HL7 table 0001)",
                    hl7_code="103",
                    location=where,
                )
            return ("eq", "sex", name), {name: sex}
        if p.field == 11 and p.component in _ADDRESS and p.subcomponent in (None, 1):
            return _text_match(_ADDRESS[p.component], p.value, name)
        if p.field == 13 and p.component in (None, 1, 12):
            return ("eq", "phone", name), {name: phone_key(p.value) or ""}
        if p.field == 18 and p.component in (None, 1):
            return ("eq", "account_number", name), {name: p.value}
        if p.field == 18 and p.component == 4 and p.subcomponent in (None, 1, 2):
            # the authority's namespace (.1, or the component alone) or OID (.2), compared as fed
            return ("eq", "account_oid" if p.subcomponent == 2 else "account_namespace", name), {
                name: p.value
            }
        if p.field == 19 and p.component is None:
            return ("national", name), {name: gb11643.normalise(p.value)}
        raise MessageError(
            f"{p.name} is not a query parameter this supplier supports", hl7_code="102", location=where
        )

    def _identifier(
        self, p: PdqParameter, authority: list[PdqParameter], name: str
    ) -> tuple[_Shape, dict[str, Any]]:
        namespace = next((a.value for a in authority if a.subcomponent in (None, 1)), "")
        oid = next((a.value for a in authority if a.subcomponent == 2), "")
        try:
            domain = self.domains.resolve(namespace, oid)
        except DomainConflict as exc:
            raise MessageError(
                str(exc), hl7_code="204", location=f"QPD^1^3^{authority[0].repetition}"
            ) from None
        if domain is None:
            return ("nobody",), {}  # an unknown domain matches nobody (pix-pdq.md §8: NF)
        if domain == NATIONAL:
            return ("person_national", name), {name: gb11643.normalise(p.value)}
        return ("local", name), {name: p.value, f"{name}d": domain}

    @staticmethod
    def _name(p: PdqParameter, name: str) -> tuple[_Shape, dict[str, Any]]:
        prefix = p.value.endswith("*")
        text = p.value.rstrip("*")
        if "*" in text or "?" in text:
            raise MessageError(
                f"{p.name}: only a trailing * is a wildcard",
                hl7_code="102",
                location=f"QPD^1^3^{p.repetition}",
            )
        key = name_key(text) or ""
        pinyin = key.isascii()
        if p.field == 6:  # the mother's maiden name: matched whole, as stored
            column = "mother_pinyin" if pinyin else "mother_key"
        else:
            columns = _NAME_COLUMNS[p.component]
            column = columns[1] if pinyin else columns[0]
        value = (pinyin_key(text) or "") if pinyin else key
        if prefix:
            return ("like", column, name), {name: _like_prefix(value)}
        return ("eq", column, name), {name: value}

    # -- results ------------------------------------------------------------------------------------
    def _patient(self, conn: Connection, person_id: int, wanted: set[str] | None) -> PdqPatient | None:
        rows = conn.execute(_PERSON_RECORDS, {"p": person_id}).all()
        national = rows[0].person_national_id if rows else None
        ids = self.domains.qualified(national, ((row.domain, row.value) for row in rows), wanted)
        if not ids or not rows:
            return None  # nothing in the requested domains: left out (case 2)
        # each field from the most recently updated record that has it (a "golden record")
        newest = sorted(rows, key=lambda row: row.updated_at, reverse=True)
        demos = [json.loads(row.demographics) for row in newest]
        names = [d.get("name") or {} for d in demos]
        # the name in Hanzi when a record has it (a hospital that writes pinyin is not the better source)
        split = [n for n in names if n.get("family") or n.get("given")]
        named = next((n for n in split if not f"{n.get('family', '')}{n.get('given', '')}".isascii()), None)
        named = named or (split[0] if split else {})
        address: dict[str, Any] = next((a[0] for a in (d.get("addresses") for d in demos) if a), {})
        phone = next(
            (
                t.get("value", "")
                for d in demos
                for t in d.get("telecoms") or []
                if t.get("system") in (None, "phone")
            ),
            "",
        )
        born = next((row.birth_date for row in newest if row.birth_date), None)
        sex = next((row.sex for row in newest if row.sex), "")
        text = next((n.get("text") for n in names if n.get("text")), "")
        mother: dict[str, Any] = next(
            (d["mother_maiden_name"] for d in demos if d.get("mother_maiden_name")), {}
        )
        account: dict[str, Any] = next((d["account_number"] for d in demos if d.get("account_number")), {})
        return PdqPatient(
            identifiers=ids,
            family=named.get("family") or ("" if named else text) or "",
            given=named.get("given") or "",
            birth_date=born.strftime("%Y%m%d") if born else "",
            sex=_HL7_SEX.get(sex or "", ""),
            street=address.get("street") or "",
            city=address.get("city") or "",
            province=address.get("province") or "",
            postal_code=address.get("postal_code") or "",
            country=address.get("country") or "",
            phone=phone,
            national_id=national or "",
            mother_family=mother.get("family") or mother.get("text") or "",
            mother_given=(mother.get("given") or "") if mother.get("family") else "",
            account=(
                QualifiedId(account["value"], account.get("namespace") or "", account.get("system") or "")
                if account
                else None
            ),
        )

    # -- continuations ----------------------------------------------------------------------------
    @staticmethod
    def _keep(query: PdqQuery, rest: list[int], total: int) -> tuple[str, Callable[[Connection], None]]:
        """A new pointer to the hits not yet returned, and the write that keeps them behind it."""
        now = dt.datetime.now(dt.UTC)
        pointer = secrets.token_hex(16)
        row = {
            "pointer": pointer,
            "requester": query.requester[:200],
            "query_tag": query.tag[:64],
            "query_hash": _hash(query.fingerprint),
            "remaining": json.dumps(rest),
            "total": total,
            "created_at": now,
            "expires_at": now + dt.timedelta(minutes=CONTINUATION_MINUTES),
        }

        def keep(conn: Connection) -> None:
            conn.execute(continuations.insert(), row)
            # an abandoned query "will eventually terminate" (§3.21.4.3): expired pointers go now
            conn.execute(delete(continuations).where(continuations.c.expires_at < now))

        return pointer, keep

    @staticmethod
    def _forget(pointer: str) -> Callable[[Connection], None]:
        """The write that consumes a pointer once its page is answered."""

        def forget(conn: Connection) -> None:
            conn.execute(delete(continuations).where(continuations.c.pointer == pointer))

        return forget

    def _continue(self, conn: Connection, query: PdqQuery) -> tuple[list[int], int]:
        row = conn.execute(select(continuations).where(continuations.c.pointer == query.pointer)).first()
        now = dt.datetime.now(dt.UTC)
        if (
            row is None
            or row.expires_at < now
            or row.requester != query.requester[:200]
            or row.query_hash != _hash(query.fingerprint)
        ):
            raise MessageError(
                f"unknown or expired continuation pointer {query.pointer!r} for this query and sender",
                hl7_code="204",
                location="DSC^1^1",
            )
        return [int(x) for x in json.loads(row.remaining)], int(row.total)


def _date(p: PdqParameter, where: str) -> dt.date:
    digits = p.value[:8]
    try:
        return dt.datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        raise MessageError(
            f"{p.name}: {p.value!r} is not a date (YYYYMMDD)", hl7_code="102", location=where
        ) from None


def _like_prefix(value: str) -> str:
    """A LIKE pattern for values starting with ``value`` (its own % and _ taken literally)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _text_match(column: str, value: str, name: str) -> tuple[_Shape, dict[str, Any]]:
    """An address part: a trailing * is a prefix, otherwise equal whatever the case."""
    if value.endswith("*"):
        return ("like", column, name), {name: _like_prefix(value.rstrip("*"))}
    return ("upper", column, name), {name: value.upper()}


def _where(key: _Shape) -> Any:
    """The condition of one parameter's shape (``PdqSupplier._condition``), its values bound."""
    r = records
    kind, *rest = key
    if kind == "none":
        return None
    if kind == "nobody":
        return r.c.id.is_(None)
    if kind == "local":
        (name,) = rest
        return and_(r.c.domain == bindparam(f"{name}d"), r.c.value == bindparam(name))
    if kind == "person_national":
        return persons.c.national_id == bindparam(rest[0])
    if kind == "national":
        return or_(r.c.national_id == bindparam(rest[0]), persons.c.national_id == bindparam(rest[0]))
    column, name = rest
    if kind == "eq":
        return r.c[column] == bindparam(name)
    if kind == "upper":
        return func.upper(r.c[column]) == bindparam(name)
    return r.c[column].like(bindparam(name), escape="\\")  # like


def _find_statement(shape: tuple[_Shape, ...], domains: tuple[bool, bool] | None) -> Any:
    """The persons matching every parameter (active records of active persons), in id order."""
    r = records
    conditions: list[Any] = [r.c.status == "active", persons.c.status == "active"]
    conditions += [c for c in (_where(k) for k in shape) if c is not None]
    if domains is not None:  # QPD-8: only persons with an identifier in those domains
        any_local, national = domains
        others = [records.c.domain.in_(bindparam("domains", expanding=True))] if any_local else []
        if national:
            others.append(persons.c.national_id.is_not(None))
        in_domains = select(records.c.person_id).where(
            records.c.status == "active", or_(*others) if len(others) > 1 else others[0]
        )
        if national:
            in_domains = in_domains.join(persons, persons.c.id == records.c.person_id)
        conditions.append(r.c.person_id.in_(in_domains))
    return (
        select(r.c.person_id)
        .join(persons, persons.c.id == r.c.person_id)
        .where(and_(*conditions))
        .group_by(r.c.person_id)
        .order_by(r.c.person_id)
        .limit(MAX_HITS)
    )


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
