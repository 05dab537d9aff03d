# Local stand-in for the official postgres image: Debian's PostgreSQL 15 on the
# debootstrap base, with an entrypoint that honours the same POSTGRES_* variables.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The cluster is made here, once, not at every start (the entrypoint names its superuser).
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh && docker-entrypoint.sh prepare
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
