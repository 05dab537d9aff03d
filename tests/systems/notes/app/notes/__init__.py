"""notes: a web service that stores notes in PostgreSQL and announces each on RabbitMQ, and a
worker that records every announced note as processed. A small second system for the harness,
wired the way a compose file wires it (DATABASE_URL, an AMQP URL), with no harness hooks."""
