"""HTTP layer: thin routers, one module per resource."""
