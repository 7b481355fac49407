"""Pure domain: pydantic models and rules. Imports no boto3."""
