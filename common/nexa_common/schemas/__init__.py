"""Wire types of the public API, shared by the services (which validate them) and the router
(whose OpenAPI document lists them)."""
