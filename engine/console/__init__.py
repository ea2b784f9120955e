"""The web console (issue 8): its pages, the REST API they use, accounts and roles, sessions and API
tokens, all served by the ``console://host:port`` source.

Modules: ``tables`` (the accounts' tables), ``passwords`` (scrypt hashes), ``roles`` (who may do what),
``accounts`` (users, tokens, sessions, lockout, each change audited), ``throttle`` (failed logins per
address), ``auth`` (a request's credentials), ``api`` (the ``/api/v1`` routes), ``dashboard`` (its
counts, series and queues), ``hl7view`` (HL7 segment by segment with field names), ``bulk``
(reprocessing a search's messages), ``auditlog`` (searching the audit trail), ``openapi`` (the API's
OpenAPI 3.1 description), ``source`` (the source serving the API and the pages of ``static/``).
"""
