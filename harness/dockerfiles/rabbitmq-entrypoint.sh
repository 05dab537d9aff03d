#!/bin/sh
# Writes the broker config from the environment, as the official image does, and
# lets the default user connect from other containers (loopback_users = none).
set -eu
: "${RABBITMQ_DEFAULT_USER:=guest}"
: "${RABBITMQ_DEFAULT_PASS:=guest}"
mkdir -p /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
cat > /etc/rabbitmq/rabbitmq.conf <<CONF
loopback_users = none
listeners.tcp.default = 5672
default_user = ${RABBITMQ_DEFAULT_USER}
default_pass = ${RABBITMQ_DEFAULT_PASS}
log.console = true
log.file = false
CONF
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq
if [ "$1" = "rabbitmq-server" ]; then
  # setpriv execs the server script in place, as PID 1, where its own SIGTERM trap stops the
  # broker cleanly (runuser would stay as PID 1, take the signal itself and end the broker
  # unclean after its grace), so `docker stop` returns as soon as RabbitMQ has shut down.
  # HOME as runuser set it: the Erlang cookie lives there.
  export HOME=/var/lib/rabbitmq
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups -- /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"
