"""The cluster store: many instances, one PostgreSQL (see ``docs/cluster.md``)."""
