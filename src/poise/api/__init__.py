"""The service: one FastAPI application serving the REST API under ``/api/v1`` (with
its OpenAPI document) and, later, the web pages.

Owns: the application and its lifetime (``app``), errors as RFC 9457 problem details
mapped from the domain's typed errors (``problems``), structured JSON logs with a
request id (``logs``), and the routers (``routes``), each thin: it reads through the
store's repositories and the workflow shells and answers.
May not hold finance rules (the stages do), and may not touch the store except
through its repositories.
"""
