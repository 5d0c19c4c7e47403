#!/usr/bin/env bash
# kafka.sh: a real Apache Kafka broker (KRaft) from Maven Central jars, no Docker.
#
#   kafka.sh fetch               resolve the jars once into $RIFFLE_KAFKA_CACHE (reused by later runs)
#   kafka.sh start               one KRaft node; prints the bootstrap address once it serves requests
#   kafka.sh start-cluster       three KRaft nodes on 127.0.0.1 (RF 3, min ISR 2); prints the addresses
#   kafka.sh stop                stop every node of this run dir (SIGTERM, then SIGKILL after 20s)
#   kafka.sh kill-node N         SIGKILL node N
#   kafka.sh restart-node N      start node N again on its existing data; waits until it serves
#   kafka.sh pause-node N        SIGSTOP node N
#   kafka.sh resume-node N       SIGCONT node N
#   kafka.sh address             print the bootstrap address of the running single node or cluster
#   kafka.sh status              print each node with its pid and state
#
# Environment:
#   RIFFLE_KAFKA_CACHE   where the jars live       (default ${XDG_CACHE_HOME:-$HOME/.cache}/riffle/kafka-<version>)
#   RIFFLE_KAFKA_RUN     the run dir: config, data, logs, pids of one single node or cluster
#                        (default ${TMPDIR:-/tmp}/riffle-kafka/default)
#   RIFFLE_KAFKA_PORT    first port to try (default 19092); free ports are picked upwards from it
#   RIFFLE_KAFKA_OWNER_PID  when set, the nodes are killed once that process is gone (used by Go tests,
#                        so a test binary killed by a timeout does not leave brokers behind)
#   RIFFLE_KAFKA_HEAP    JVM heap per node (default 768m)
#   JAVA                 the java binary (default: java on PATH, or $JAVA_HOME/bin/java)
#
# Broker logs go to $RIFFLE_KAFKA_RUN/node<N>/logs/server.log at WARN (plus the start-up line).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
cache=${RIFFLE_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/riffle/kafka-$kafka_version}
run=${RIFFLE_KAFKA_RUN:-${TMPDIR:-/tmp}/riffle-kafka/default}
heap=${RIFFLE_KAFKA_HEAP:-768m}
first_port=${RIFFLE_KAFKA_PORT:-19092}
start_timeout=${RIFFLE_KAFKA_START_TIMEOUT:-120}

if [ -n "${JAVA:-}" ]; then java_bin=$JAVA
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java_bin=$JAVA_HOME/bin/java
else java_bin=java; fi

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

# ---------------------------------------------------------------------------------------------------
# fetch

fetch() {
  if [ -f "$cache/libs/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka $kafka_version from Maven Central"
  mkdir -p "$cache"
  # One fetch at a time per cache, even when several test processes start at once.
  exec 9>"$cache/.fetch.lock"
  flock 9
  if [ -f "$cache/libs/.complete" ]; then flock -u 9; return 0; fi
  local tmp="$cache/libs.tmp.$$"
  rm -rf "$tmp"
  log "fetching Apache Kafka $kafka_version jars from Maven Central into $cache/libs"
  local t0=$SECONDS
  if ! mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$cache/fetch.log" 2>&1; then
    cat "$cache/fetch.log" >&2
    rm -rf "$tmp"
    die "Maven could not resolve the Kafka jars (log above)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but no kafka_2.13 jar arrived in $tmp"
  touch "$tmp/.complete"
  rm -rf "$cache/libs"
  mv "$tmp" "$cache/libs"
  log "fetched $(ls "$cache/libs" | wc -l) jars in $((SECONDS - t0))s"
  flock -u 9
}

# ---------------------------------------------------------------------------------------------------
# ports and processes

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N: print N free ports, scanning upwards from $first_port.
free_ports() {
  local want=$1 p=$first_port got=0
  while [ "$got" -lt "$want" ]; do
    [ "$p" -lt 65000 ] || die "no free port found above $first_port"
    if ! port_in_use "$p"; then echo "$p"; got=$((got + 1)); fi
    p=$((p + 1))
  done
}

node_dir() { echo "$run/node$1"; }
node_pid() { local f; f="$(node_dir "$1")/pid"; [ -f "$f" ] && cat "$f" || true; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

nodes() {
  local d
  for d in "$run"/node*; do [ -d "$d" ] && basename "$d" | sed 's/^node//'; done | sort -n
}

# ---------------------------------------------------------------------------------------------------
# configuration

write_log4j() {
  local dir=$1
  cat >"$dir/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="server" fileName="$dir/logs/server.log" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="server"/></Root>
    <!-- The start-up line: kafka.sh waits for it. -->
    <Logger name="kafka.server.KafkaRaftServer" level="INFO" additivity="false"><AppenderRef ref="server"/></Logger>
    <!-- Expected noise in tests: clients disconnecting, nodes killed on purpose. -->
    <Logger name="org.apache.kafka.common.network.Selector" level="ERROR"/>
  </Loggers>
</Configuration>
EOF
}

# write_config DIR NODE_ID BROKER_PORT CONTROLLER_PORT VOTERS RF MIN_ISR
write_config() {
  local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6 isr=$7
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
# Written by tools/kafka/kafka.sh: a test broker, tuned to be quick, not durable.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data

# Topics are created on purpose, never by a typo in a test.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=1

# Internal topics: one partition each, so the coordinators come up fast.
offsets.topic.num.partitions=1
offsets.topic.replication.factor=$rf
transaction.state.log.num.partitions=1
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.num.partitions=1
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr

# Groups rebalance at once; tests may use short session timeouts.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Transactions left open by a killed producer are aborted quickly.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
transaction.remove.expired.transaction.cleanup.interval.ms=10000

# The log cleaner: a small dedupe buffer and a short back-off, so compaction is observable in tests.
log.cleaner.dedupe.buffer.size=4194304
log.cleaner.io.buffer.size=65536
log.cleaner.threads=1
log.cleaner.backoff.ms=250
log.retention.check.interval.ms=1000
log.segment.delete.delay.ms=1000
file.delete.delay.ms=1000

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  write_log4j "$dir"
}

classpath() { echo "$cache/libs/*"; }

format_node() {
  local dir=$1 cluster_id=$2
  "$java_bin" -Xmx256m -cp "$(classpath)" -Dlog4j2.configurationFile="$dir/log4j2.xml" \
    kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$dir/server.properties" \
    >"$dir/logs/format.log" 2>&1 || { cat "$dir/logs/format.log" >&2; die "formatting $dir failed"; }
}

launch_node() {
  local n=$1 dir
  dir=$(node_dir "$n")
  # A restart starts a fresh server.log, so wait_ready sees this start's line, not the last one's.
  if [ -s "$dir/logs/server.log" ]; then cat "$dir/logs/server.log" >>"$dir/logs/server.log.prev"; fi
  : >"$dir/logs/server.log"
  # setsid + redirections: the JVM outlives this script and holds none of the caller's pipes.
  setsid "$java_bin" -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.xml" -Dkafka.logs.dir="$dir/logs" \
    -cp "$(classpath)" kafka.Kafka "$dir/server.properties" \
    >>"$dir/logs/stdout.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$dir/pid"
}

# wait_ready N: until node N logged its start-up line and its broker port accepts connections.
wait_ready() {
  local n=$1 dir pid port deadline
  dir=$(node_dir "$n")
  port=$(cat "$dir/port")
  deadline=$((SECONDS + start_timeout))
  while :; do
    pid=$(node_pid "$n")
    if ! alive "$pid"; then
      tail -n 40 "$dir/logs/stdout.log" "$dir/logs/server.log" >&2 2>/dev/null || true
      die "node $n exited during start-up (logs in $dir/logs)"
    fi
    if grep -q "Kafka Server started" "$dir/logs/server.log" 2>/dev/null && port_in_use "$port"; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "node $n did not start within ${start_timeout}s (logs in $dir/logs)"
    sleep 0.2
  done
}

start_watchdog() {
  [ -n "${RIFFLE_KAFKA_OWNER_PID:-}" ] || return 0
  local owner=$RIFFLE_KAFKA_OWNER_PID
  echo "$owner" >"$run/owner"
  # Lives as long as the owner and the run dir; when the owner dies first, takes the nodes with it.
  setsid bash -c '
    run=$1 owner=$2
    while kill -0 "$owner" 2>/dev/null && [ -f "$run/owner" ]; do sleep 1; done
    if [ -f "$run/owner" ]; then
      for f in "$run"/node*/pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
      rm -rf "$run"
    fi' watchdog "$run" "$owner" >/dev/null 2>&1 </dev/null 8>&- 9>&- &
}

address() {
  local n addrs=()
  for n in $(nodes); do addrs+=("127.0.0.1:$(cat "$(node_dir "$n")/port")"); done
  [ "${#addrs[@]}" -gt 0 ] || die "nothing started in $run"
  (IFS=,; echo "${addrs[*]}")
}

cluster_id() {
  # 16 random bytes, URL-safe base64 without padding: the form Kafka's StorageTool accepts. One
  # in 64 starts with '-', which is why format passes it as --cluster-id=ID, never as a separate
  # argument (the option parser would take it for an option and the start would fail).
  head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

ensure_not_running() {
  local n
  for n in $(nodes); do
    if alive "$(node_pid "$n")"; then die "$run already has running nodes; run 'kafka.sh stop' first"; fi
  done
  rm -rf "$run"
  mkdir -p "$run"
}

check_java() {
  command -v "$java_bin" >/dev/null || die "Java 17+ is needed to run the Kafka broker (no '$java_bin' on PATH)"
  local v
  v=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ -n "$v" ] && [ "$v" -ge 17 ] || die "Kafka $kafka_version needs Java 17 or newer; '$java_bin' is ${v:-unknown}"
}

# start_nodes COUNT: configure, format and start COUNT nodes; print the bootstrap address.
start_nodes() {
  local count=$1 rf isr ports voters="" cid i t0=$SECONDS
  check_java
  fetch
  ensure_not_running
  if [ "$count" -eq 1 ]; then rf=1; isr=1; else rf=3; isr=2; fi
  # Concurrent starts (several test processes) must not pick the same free ports: hold a lock from
  # choosing the ports until the nodes have bound them.
  exec 8>"${TMPDIR:-/tmp}/riffle-kafka-ports.lock"
  flock 8
  mapfile -t ports < <(free_ports $((count * 2)))
  for i in $(seq 1 "$count"); do
    voters+="${voters:+,}$i@127.0.0.1:${ports[$((count + i - 1))]}"
  done
  cid=$(cluster_id)
  for i in $(seq 1 "$count"); do
    local dir
    dir=$(node_dir "$i")
    write_config "$dir" "$i" "${ports[$((i - 1))]}" "${ports[$((count + i - 1))]}" "$voters" "$rf" "$isr"
    echo "${ports[$((i - 1))]}" >"$dir/port"
  done
  # Format in parallel: each format is a JVM start of its own.
  for i in $(seq 1 "$count"); do format_node "$(node_dir "$i")" "$cid" & done
  wait
  for i in $(seq 1 "$count"); do launch_node "$i"; done
  start_watchdog
  for i in $(seq 1 "$count"); do wait_ready "$i"; done
  flock -u 8
  log "started $count node(s) in $((SECONDS - t0))s; logs in $run"
  address
}

stop_all() {
  local n pid pids=()
  rm -f "$run/owner"
  for n in $(nodes); do
    pid=$(node_pid "$n")
    if alive "$pid"; then kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  done
  for n in $(nodes); do rm -f "$(node_dir "$n")/pid"; done
  if [ "${RIFFLE_KAFKA_KEEP:-}" != 1 ]; then rm -rf "$run"; fi
}

need_node() {
  [ -n "${1:-}" ] || die "which node? (e.g. kafka.sh $cmd 2)"
  [ -d "$(node_dir "$1")" ] || die "there is no node $1 in $run"
}

cmd=${1:-}
case "$cmd" in
  fetch) check_java; fetch; echo "$cache/libs" ;;
  start) start_nodes 1 ;;
  start-cluster) start_nodes 3 ;;
  stop) stop_all ;;
  kill-node)
    need_node "${2:-}"; pid=$(node_pid "$2")
    alive "$pid" || die "node $2 is not running"
    kill -9 "$pid"
    while alive "$pid"; do sleep 0.05; done ;;
  restart-node)
    need_node "${2:-}"; pid=$(node_pid "$2")
    alive "$pid" && die "node $2 is still running (pid $pid)"
    launch_node "$2"; wait_ready "$2" ;;
  pause-node) need_node "${2:-}"; kill -STOP "$(node_pid "$2")" ;;
  resume-node) need_node "${2:-}"; kill -CONT "$(node_pid "$2")" ;;
  address) address ;;
  status)
    for n in $(nodes); do
      pid=$(node_pid "$n"); state=stopped
      if alive "$pid"; then state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo running); fi
      echo "node $n port $(cat "$(node_dir "$n")/port") pid ${pid:--} state $state"
    done ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
