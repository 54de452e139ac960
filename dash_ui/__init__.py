"""dash_ui package."""
