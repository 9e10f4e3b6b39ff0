"""The commerce read model: shops, products, events, buy-together groups, installment plans.

`writes` is what ingest and the expiry timer change; `reads` is what users (and the server)
read. Other capabilities read from here: `get_product(q, id, viewer)` (a product with its shop,
ready for server.domain.cards.product_card), `get_products(q, ids, viewer)`,
`get_shops(q, ids, viewer)`,
`get_shops_by_handles(q, handles, viewer)` (for `$shopname` mentions), `get_groups`,
`get_plans`, `get_events`. The viewer is required: a user id, or `visibility.SYSTEM` for a
server read with no user looking.
"""

from server.store.commerce.reads import (
    get_events,
    get_groups,
    get_plans,
    get_product,
    get_products,
    get_shops,
    get_shops_by_handles,
)

__all__ = [
    "get_events",
    "get_groups",
    "get_plans",
    "get_product",
    "get_products",
    "get_shops",
    "get_shops_by_handles",
]
