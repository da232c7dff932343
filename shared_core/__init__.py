"""The bottom layer: what shared_events, shared_runtime and the services all use, importing
none of them. The request context, after-commit hooks, the field types every request body
uses, and the domain errors (a rule's refusal, mapped to HTTP only at the edge)."""
