"""Pages of the Dash app; each module has ``layout(ctx, ...)`` and ``register(app, ctx)``."""
