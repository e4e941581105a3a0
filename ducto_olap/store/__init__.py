"""The OLTP ledger: PostgresStore, MemoryStore and the embedded server."""
