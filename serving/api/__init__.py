"""HTTP layer: dependencies, error handlers, middleware and one router per resource."""
