"""The system of record: tables, migrations, engines, bulk loads and repositories.

Owns: the SQLAlchemy tables (``tables``), their Alembic migrations and the one checked
way to open a store (``migrate``), engines for SQLite and PostgreSQL (``engine``), the
translation of database faults into one-line typed errors (``faults``), the bulk upsert
that ingest uses (``bulk``), keyword-only repository functions that turn rows into
domain objects (``repo``, a package by context), and the demo's reset (``reset``).
May not touch: the bus, files other than the database, or any stage's rules.
"""
