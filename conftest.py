"""The repository's root conftest: it puts the repository's root on the import path (pytest does
that for the directory of a root conftest), so that `scenarios.shop` imports from scenarios/ and
tests/ alike, and registers the shop's fixtures (`shop`, `vendor`, `sink`) for both. pytest takes
`pytest_plugins` only in the root conftest.

The shop's package is scenarios.shop, never `shop`: that name is the shop's own service package
(services/shop) inside its containers.
"""

pytest_plugins = ["scenarios.shop.fixtures"]
