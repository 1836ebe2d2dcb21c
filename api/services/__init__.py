"""Data access and domain operations behind the routes (routes stay thin)."""
