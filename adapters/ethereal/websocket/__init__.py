"""Ethereal v2 WebSocket stream: client (reconnect, resubscribe) and message structs."""
