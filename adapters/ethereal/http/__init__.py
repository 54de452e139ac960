"""Ethereal REST: the SDK's async client with rate limiting and 429 handling, and its models."""
