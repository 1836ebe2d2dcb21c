"""Settings and the database engine, shared by the API, the CLI and the flows."""
