#!/usr/bin/env bash
# with-kafka.sh CMD...: run CMD with KAFKA_BROKERS pointing at a real Kafka broker.
#
# If KAFKA_BROKERS is already set, CMD runs against it and nothing is started. Otherwise one
# single-node broker is started with kafka.sh (jars fetched from Maven Central on first use),
# exported as KAFKA_BROKERS for CMD and every test process under it, and stopped when CMD ends,
# whatever its outcome. The exit status is CMD's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -n "${KAFKA_BROKERS:-}" ]; then
  echo "with-kafka.sh: using KAFKA_BROKERS=$KAFKA_BROKERS" >&2
  exec "$@"
fi

export RIFFLE_KAFKA_RUN=${RIFFLE_KAFKA_RUN:-${TMPDIR:-/tmp}/riffle-kafka/with-kafka-$$}
export RIFFLE_KAFKA_OWNER_PID=$$
trap '"$here/kafka.sh" stop' EXIT
KAFKA_BROKERS=$("$here/kafka.sh" start)
export KAFKA_BROKERS
echo "with-kafka.sh: Apache Kafka at $KAFKA_BROKERS" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
