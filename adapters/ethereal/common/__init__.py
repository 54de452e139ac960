"""Shared pieces of the Ethereal adapter: constants, enums, URLs, parsing, credentials, signing."""
