"""Direct messaging, split by intent (as Zulip splits `zerver/actions/`). Import the module you
need; this package exports nothing itself.

- `commands`: the pydantic command models, one per action, shared by HTTP and the gateway.
- `conversations`: open the one conversation of a pair, list, get, delete for yourself, mute,
  mark unread.
- `send`: send and forward; the one write path of a new message (rate limit, nonce, events).
- `history`: read a conversation's messages (pages, catch-up after a seq) and one message.
- `receipts`: read and delivery watermarks.
- `reactions`: emoji reactions.
- `edits`: edit a message, delete it for yourself or for everyone.
- `typing`: ephemeral typing indicators.
- `search`: full-text search over your conversations.
- `contact`: "Contact seller" and the product banner of a message.
- `views`: a message / conversation as one viewer sees it, product cards and banners, cursors,
  JSON helpers for event payloads.
- `content`: what a message may hold (text limits, links, type, nonce).
- `ordering`: the per-conversation slot that keeps events in commit order.

Who may see or do what is decided in `server.domain.access` (`access_conversation`,
`access_message`, `check_can_message`); events are staged through `ctx.events`.
"""
