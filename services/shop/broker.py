"""The RabbitMQ connection and topology, shared by publisher (api_gateway) and consumer (inventory).

Resilient: a robust connection that reconnects by itself after a broker outage, publisher
confirms, and a dead-letter exchange behind the work queue. Fragile: a plain connection that
stays dead once lost, no confirms, no dead-lettering.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue

from shop import events


async def connect(url: str, resilient: bool) -> AbstractConnection:
    if resilient:
        return await aio_pika.connect_robust(url, reconnect_interval=1.0, timeout=5)
    return await aio_pika.connect(url, timeout=5)


async def declare(channel: AbstractChannel, resilient: bool) -> tuple[AbstractExchange, AbstractQueue]:
    """Declares exchange, queue and (resilient) the dead-letter path; returns the exchange and queue."""
    exchange = await channel.declare_exchange(events.EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    arguments = {}
    if resilient:
        dlx = await channel.declare_exchange(events.DLX, aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await channel.declare_queue(events.DLQ, durable=True)
        await dlq.bind(dlx)
        arguments = {"x-dead-letter-exchange": events.DLX}
    queue = await channel.declare_queue(events.QUEUE, durable=True, arguments=arguments)
    await queue.bind(exchange, routing_key=events.ROUTING)
    return exchange, queue
