#!/usr/bin/env bash
# registry.sh: a real schema registry (Apicurio Registry, Confluent-compatible API) from Maven
# Central, no Docker. In-memory storage: every start is empty.
#
#   registry.sh fetch     resolve the distribution once into $RIFFLE_REGISTRY_CACHE (reused later)
#   registry.sh start     start it; prints the Confluent-compatible base URL once it serves requests
#   registry.sh stop      stop it (SIGTERM, then SIGKILL after 20s)
#   registry.sh address   print the base URL of the running registry
#   registry.sh status    print its pid, port and state
#
# The base URL is http://127.0.0.1:<port>/apis/ccompat/v7: give it to any Confluent schema
# registry client (franz-go's sr.URLs, Java's schema.registry.url).
#
# Environment:
#   RIFFLE_REGISTRY_CACHE      where the distribution lives (default ${XDG_CACHE_HOME:-$HOME/.cache}/riffle/apicurio-<version>)
#   RIFFLE_REGISTRY_RUN        the run dir: config, logs, pid (default ${TMPDIR:-/tmp}/riffle-registry/default)
#   RIFFLE_REGISTRY_PORT       first port to try (default 18081); free ports are picked upwards from it
#   RIFFLE_REGISTRY_OWNER_PID  when set, the registry is killed once that process is gone (used by Go
#                              tests, so a test binary killed by a timeout leaves nothing behind)
#   RIFFLE_REGISTRY_HEAP       JVM heap (default 384m)
#   RIFFLE_REGISTRY_JAVA       the java binary; default: the first Java 21+ among $JAVA,
#                              $JAVA_HOME/bin/java, java on PATH and /usr/lib/jvm/*/bin/java
#
# Logs go to $RIFFLE_REGISTRY_RUN/logs/registry.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$here/pom.xml")
cache=${RIFFLE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/riffle/apicurio-$version}
run=${RIFFLE_REGISTRY_RUN:-${TMPDIR:-/tmp}/riffle-registry/default}
heap=${RIFFLE_REGISTRY_HEAP:-384m}
first_port=${RIFFLE_REGISTRY_PORT:-18081}
start_timeout=${RIFFLE_REGISTRY_START_TIMEOUT:-180}
ccompat=/apis/ccompat/v7

die() { echo "registry.sh: $*" >&2; exit 1; }
log() { echo "registry.sh: $*" >&2; }

# ---------------------------------------------------------------------------------------------------
# java: Apicurio Registry 3.x is compiled for Java 21 (class file version 65).

java_major() {
  "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}

find_java() {
  if [ -n "${RIFFLE_REGISTRY_JAVA:-}" ]; then echo "$RIFFLE_REGISTRY_JAVA"; return 0; fi
  local c v
  for c in "${JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    v=$(java_major "$c")
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then echo "$c"; return 0; fi
  done
  return 1
}

check_java() {
  java_bin=$(find_java) || die "Apicurio Registry $version needs Java 21 or newer; none found (set RIFFLE_REGISTRY_JAVA)"
  local v
  v=$(java_major "$java_bin")
  [ -n "$v" ] && [ "$v" -ge 21 ] || die "Apicurio Registry $version needs Java 21 or newer; '$java_bin' is ${v:-unknown}"
}

# ---------------------------------------------------------------------------------------------------
# fetch

fetch() {
  if [ -f "$cache/app/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Apicurio Registry $version from Maven Central"
  mkdir -p "$cache"
  # One fetch at a time per cache, even when several test processes start at once.
  exec 9>"$cache/.fetch.lock"
  flock 9
  if [ -f "$cache/app/.complete" ]; then flock -u 9; return 0; fi
  local tmp="$cache/app.tmp.$$" dl="$cache/dl.tmp.$$"
  rm -rf "$tmp" "$dl"
  log "fetching Apicurio Registry $version from Maven Central into $cache/app"
  local t0=$SECONDS
  if ! mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$dl" -DincludeTypes=tar.gz >"$cache/fetch.log" 2>&1; then
    cat "$cache/fetch.log" >&2
    rm -rf "$dl"
    die "Maven could not resolve io.apicurio:apicurio-registry-app:$version:tar.gz:all (log above)"
  fi
  local tgz
  tgz=$(ls "$dl"/apicurio-registry-app-*-all.tar.gz 2>/dev/null | head -1)
  [ -n "$tgz" ] || die "Maven ran but no apicurio-registry-app tar.gz arrived in $dl"
  mkdir -p "$tmp"
  tar xzf "$tgz" -C "$tmp" || die "could not unpack $tgz"
  rm -rf "$dl"
  [ -f "$tmp/quarkus-run.jar" ] || die "the distribution has no quarkus-run.jar"
  touch "$tmp/.complete"
  rm -rf "$cache/app"
  mv "$tmp" "$cache/app"
  log "fetched in $((SECONDS - t0))s"
  flock -u 9
}

# ---------------------------------------------------------------------------------------------------
# processes

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p=$1
  while port_in_use "$p"; do
    p=$((p + 1))
    [ "$p" -lt 65000 ] || die "no free port found above $1"
  done
  echo "$p"
}

pid() { [ -f "$run/pid" ] && cat "$run/pid" || true; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

address() {
  [ -f "$run/port" ] || die "nothing started in $run"
  echo "http://127.0.0.1:$(cat "$run/port")$ccompat"
}

ready() {
  local url
  url=$(address)
  if command -v curl >/dev/null; then
    curl -sf -o /dev/null --max-time 5 "$url/subjects"
  else
    grep -q "Listening on" "$run/logs/registry.log" 2>/dev/null && port_in_use "$(cat "$run/port")"
  fi
}

start_watchdog() {
  [ -n "${RIFFLE_REGISTRY_OWNER_PID:-}" ] || return 0
  echo "$RIFFLE_REGISTRY_OWNER_PID" >"$run/owner"
  # Lives as long as the owner and the run dir; when the owner dies first, takes the registry along.
  setsid bash -c '
    run=$1 owner=$2
    while kill -0 "$owner" 2>/dev/null && [ -f "$run/owner" ]; do sleep 1; done
    if [ -f "$run/owner" ]; then
      [ -f "$run/pid" ] && kill -9 "$(cat "$run/pid")" 2>/dev/null
      rm -rf "$run"
    fi' watchdog "$run" "$RIFFLE_REGISTRY_OWNER_PID" >/dev/null 2>&1 </dev/null 8>&- 9>&- &
}

start() {
  check_java
  fetch
  if alive "$(pid)"; then die "$run already has a running registry; run 'registry.sh stop' first"; fi
  rm -rf "$run"
  mkdir -p "$run/logs"
  # Concurrent starts must not pick the same free ports: hold a lock until the ports are bound.
  exec 8>"${TMPDIR:-/tmp}/riffle-registry-ports.lock"
  flock 8
  local port mport t0=$SECONDS deadline
  port=$(free_port "$first_port")
  mport=$(free_port $((port + 1)))
  echo "$port" >"$run/port"
  # The HTTP API and the management interface (health, metrics) both on loopback only. Storage
  # is the default: in-memory H2.
  # setsid + redirections: the JVM outlives this script and holds none of the caller's pipes.
  setsid "$java_bin" -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$mport" \
    -Dquarkus.banner.enabled=false \
    -jar "$cache/app/quarkus-run.jar" \
    >>"$run/logs/registry.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$run/pid"
  start_watchdog
  deadline=$((SECONDS + start_timeout))
  while ! ready; do
    if ! alive "$(pid)"; then
      tail -n 40 "$run/logs/registry.log" >&2 2>/dev/null || true
      die "the registry exited during start-up (log in $run/logs)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "the registry did not start within ${start_timeout}s (log in $run/logs)"
    sleep 0.5
  done
  flock -u 8
  log "Apicurio Registry $version started in $((SECONDS - t0))s; log in $run/logs"
  address
}

stop() {
  local p
  rm -f "$run/owner"
  p=$(pid)
  if alive "$p"; then
    kill -TERM "$p" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while alive "$p" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    alive "$p" && kill -9 "$p" 2>/dev/null || true
  fi
  rm -f "$run/pid"
  if [ "${RIFFLE_REGISTRY_KEEP:-}" != 1 ]; then rm -rf "$run"; fi
}

cmd=${1:-}
case "$cmd" in
  fetch) fetch; echo "$cache/app" ;;
  start) start ;;
  stop) stop ;;
  address) address ;;
  status)
    p=$(pid); state=stopped
    if alive "$p"; then state=running; fi
    echo "registry port $(cat "$run/port" 2>/dev/null || echo -) pid ${p:--} state $state" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
