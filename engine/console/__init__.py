"""The web console's foundation (issue 8): accounts and roles, sessions and API tokens, and the REST API
(``console://host:port``) the console pages use.

Modules: ``tables`` (the accounts' tables), ``passwords`` (scrypt hashes), ``roles`` (who may do what),
``accounts`` (users, tokens, sessions, lockout, each change audited), ``auth`` (a request's
credentials), ``api`` (the ``/api/v1`` routes), ``openapi`` (their OpenAPI 3.1 description),
``source`` (the ``console://`` source that serves them).
"""
