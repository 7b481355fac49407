"""Adapters: everything that talks to AWS. Each turns ClientError codes into domain errors."""
