"""BI access: the SQL endpoint (`serve`), extracts (`export`) and what plain Delta readers may rely on.

- `catalog.py` answers which published tables exist and under which SQL name (from meta/publications).
- `logins.py` keeps the BI logins (user, tenant, password hash) in a file outside the repository.
- `server.py` runs the Spark Thrift Server with per-tenant views and a read-only guard (`jvm/`).
- `export.py` writes Hyper, Parquet or CSV snapshots of a published version, optionally one tenant's.
- `protocol.py` states the Delta protocol the marts keep so delta-rs and Power BI can read them.
"""
