"""A local stand-in for the Ethereal venue (REST + WebSocket) for offline tests and demos."""

from adapters.ethereal.mock.server import MockEtherealServer, MockVenue

__all__ = ["MockEtherealServer", "MockVenue"]
