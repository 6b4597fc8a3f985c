"""The system of record: tables, migrations, engines, bulk loads and repositories.

Owns: the SQLAlchemy tables (``tables``), their Alembic migrations (``migrations``),
engines for SQLite and PostgreSQL (``engine``), the bulk upsert that ingest uses
(``bulk``) and keyword-only repository functions that turn rows into domain objects
(``repo``, a package by context).
May not touch: the bus, files other than the database, or any stage's rules.
"""
