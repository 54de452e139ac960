"""A local stand-in for the Ethereal venue (REST + WebSocket) for offline tests and demos."""

from nautilus_app.testkit.ethereal_mock.server import MockEtherealServer, MockVenue

__all__ = ["MockEtherealServer", "MockVenue"]
