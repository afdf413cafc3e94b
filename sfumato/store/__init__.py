"""Storage: the database (SQLAlchemy, migrated by Alembic) and the image files."""
