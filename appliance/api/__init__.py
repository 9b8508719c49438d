"""The config API: a Flask app (flask-openapi3, OpenAPI 3.1) served by cheroot inside the
runtime, with JWT auth (flask-jwt-extended), users with argon2id hashes, and every write through
the runtime's one profile-change path. docs/api.md describes it."""
