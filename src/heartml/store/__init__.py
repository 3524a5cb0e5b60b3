"""The prediction store: every prediction the service (or `heartml score --record`) made, and
the outcomes sent back for them. SQLAlchemy Core over SQLite (embedded default) or PostgreSQL
(several replicas), schema by Alembic migrations (`migrations/`).

- `engine`: URL, connection, migrations (`upgrade`);
- `schema`: the tables and the limits of their values (site names, request ids);
- `records`: rows and their insert; `writer`: the service's background writer;
- `outcomes`: validating and recording outcomes; `query`: reading selections back;
- `retention`: deleting predictions past their retention.
"""
