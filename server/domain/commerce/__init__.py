"""Commerce: the read model the commerce services feed and the look-ups and cards the
post-creation flows, posts and messages read. By intent: `commands` (the ingest payloads),
`ingest` (versioned upserts, deletes, participation), `live` (the `group:<id>` topic and expiry
announcements), `lookups` (search and entity reads), `views` (batch cards for other
capabilities). Access checks are in server.domain.access.
"""
