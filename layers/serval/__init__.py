"""Serval shared code: domain (pure), adapters (AWS), logic (use cases)."""
