"""Real services for the integration and reliability tests, one module per concern."""
