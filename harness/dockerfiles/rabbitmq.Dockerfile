# Local stand-in for the official rabbitmq image: Debian's rabbitmq-server on the
# debootstrap base, honouring RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/*
# Only the plugins the broker runs: it loads every one in the directory at each boot.
COPY rabbitmq-trim-plugins.escript /tmp/
RUN escript /tmp/rabbitmq-trim-plugins.escript /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins \
 && rm /tmp/rabbitmq-trim-plugins.escript
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
EXPOSE 5672
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
