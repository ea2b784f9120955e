"""The message store: every stage of every message, the destination queues and the audit trail.

SQLAlchemy Core on SQLite (WAL, the embedded default) or PostgreSQL. Writes go through one
group-committing writer (``writer.BatchWriter``) so that many messages share one fsync.
"""
