"""The API's routers, one module a context; each route thin."""
