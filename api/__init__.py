"""The FastAPI application, its routes, auth dependencies, the web pages and the CLI."""
