"""What the two services share: the tables and the queue."""

QUEUE = "notes.created"

# Run on every new connection by both services (whichever comes first makes them).
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id bigserial PRIMARY KEY,
    text text NOT NULL,
    published boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS processed (
    note_id bigint PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
"""
