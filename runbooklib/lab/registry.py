"""The products of the lab estate, in start and inventory order.

A new product (Office Online Server ``oos-1``/``oos-2``, the Skype for Business pool
``skype-fe1``/``skype-fe2``, Exchange ``exchange``) is a package beside :mod:`.sharepoint` with a
``product`` module fulfilling :class:`~runbooklib.lab.product.Product`, and one line here.
"""

from __future__ import annotations

from .exchange.product import EXCHANGE
from .oos.product import OOS
from .skype.product import SKYPE
from .product import Product
from .sharepoint.product import SHAREPOINT
from .tenant.product import TENANT

__all__ = ["PRODUCTS", "product_of"]

PRODUCTS: tuple[Product, ...] = (SHAREPOINT, OOS, SKYPE, EXCHANGE, TENANT)


def product_of(host: str) -> Product:
    """The product that ``host`` is a host of."""
    for product in PRODUCTS:
        if host in product.hosts:
            return product
    raise KeyError(f"no lab product has a host {host!r}")
