"""The router's store of responses (/v1/responses): SQLite by default, PostgreSQL when configured.

`handle.ResponseStore` is what the routes use; it opens the database (`database.py`, SQLAlchemy)
on first use, so a router that never serves /v1/responses never loads a database driver.
"""
