"""The RabbitMQ connection and topology, shared by publisher (api_gateway) and consumer (inventory).

The connection is always a robust one (aio-pika reconnects it by itself after a broker outage),
and the work queue always has its dead-letter exchange: queue arguments are fixed when the queue
is first declared, so a switch could not change them at run time. Whether a lost connection is
given up (broker_reconnect off) and whether a failed message is parked there (dlq off) is
decided by the services as they use them.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue

from shop import events


async def connect(url: str) -> AbstractConnection:
    return await aio_pika.connect_robust(url, reconnect_interval=1.0, timeout=5)


async def declare(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractQueue]:
    """Declares exchange, queue and the dead-letter path; returns the exchange and queue."""
    exchange = await channel.declare_exchange(events.EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(events.DLX, aio_pika.ExchangeType.FANOUT, durable=True)
    dlq = await channel.declare_queue(events.DLQ, durable=True)
    await dlq.bind(dlx)
    queue = await channel.declare_queue(events.QUEUE, durable=True, arguments={"x-dead-letter-exchange": events.DLX})
    await queue.bind(exchange, routing_key=events.ROUTING)
    return exchange, queue
