#!/bin/sh
# Create Omniroute's topics on Apache Kafka with the right partitions and
# cleanup policies, then check that every one has KAFKA_PARTITIONS partitions.
# Idempotent: run it before every start (docker compose does, as kafka-init).
#
# Every topic keyed by workspace has the same partition count, so one router
# worker owns one workspace's inquiries, agent events and task events together.
# The partition count caps the number of router workers that get work; it can
# only grow, and growing it moves workspaces between partitions (see
# deploy/README.md, "Scale").
set -eu

: "${KAFKA_BOOTSTRAP:?}" "${KAFKA_PARTITIONS:?}" "${KAFKA_REPLICATION_FACTOR:?}"
: "${ROUTER_APP_ID:=omniroute-router}"
: "${EVENTS_RETENTION_MS:=604800000}"        # 7 days: the audit trail
: "${DEAD_LETTERS_RETENTION_MS:=2592000000}" # 30 days: time to investigate
: "${TICKS_RETENTION_MS:=3600000}"           # 1 hour: ticks are worthless once processed
: "${SNAPSHOTS_RETENTION_MS:=3600000}"       # 1 hour: only the latest queue snapshot matters
# Production: replication 3 and min.insync.replicas 2, so an acknowledged write
# is on two brokers and one broker may be down (the Kubernetes Job sets both).
: "${KAFKA_MIN_INSYNC_REPLICAS:=1}"
: "${KAFKA_MAX_COMPACTION_LAG_MS:=3600000}"  # 1 hour: compacted topics really compact
TOPICS_BIN="${KAFKA_HOME:-/opt/kafka}/bin/kafka-topics.sh"

created=""
create() { # name cleanup.policy [extra --config ...]
  name=$1
  policy=$2
  shift 2
  "$TOPICS_BIN" --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
    --topic "$name" --partitions "$KAFKA_PARTITIONS" \
    --replication-factor "$KAFKA_REPLICATION_FACTOR" \
    --config "cleanup.policy=$policy" \
    --config "min.insync.replicas=$KAFKA_MIN_INSYNC_REPLICAS" "$@"
  created="$created $name"
}

events="--config retention.ms=$EVENTS_RETENTION_MS"
# Public topics (proto/omniroute/v1): key = workspace.
create "${TOPIC_INQUIRIES:-inquiries}" delete $events
create "${TOPIC_AGENT_EVENTS:-agent-events}" delete $events
create "${TOPIC_TASK_EVENTS:-task-events}" delete $events
create "${TOPIC_ASSIGNMENTS:-assignments}" delete $events
create "${TOPIC_DEAD_LETTERS:-dead-letters}" delete --config "retention.ms=$DEAD_LETTERS_RETENTION_MS"
# The router's queue figures for the wallboard, once per tick per workspace.
create "${TOPIC_QUEUE_SNAPSHOTS:-queue-snapshots}" delete --config "retention.ms=$SNAPSHOTS_RETENTION_MS"
# agent-state: latest profile, presence and load per agent, rebuilt on restart.
compact="--config max.compaction.lag.ms=$KAFKA_MAX_COMPACTION_LAG_MS"
create "${TOPIC_AGENT_SNAPSHOTS:-agent-snapshots}" compact $compact
# ingest: chat conversations, so any replica serves any of them.
create "${TOPIC_CHAT_CONVERSATIONS:-chat-conversations}" compact $compact
# agent-state: checkpoints of its whole state (a restart reads the latest and the
# records after it); kept like the events they summarise.
create "${TOPIC_AGENT_CHECKPOINTS:-agent-checkpoints}" delete $events
# Router internals: clock ticks, and the changelogs of its Faust tables
# (the routing state a new partition owner rebuilds; compacted).
create "$ROUTER_APP_ID-ticks" delete --config "retention.ms=$TICKS_RETENTION_MS"
for table in inquiries agents threads workspaces contents answered; do
  create "$ROUTER_APP_ID-$table-changelog" compact $compact
done

# A topic made earlier with another partition count breaks workspace ownership.
for name in $created; do
  count=$("$TOPICS_BIN" --bootstrap-server "$KAFKA_BOOTSTRAP" --describe --topic "$name" |
    sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)
  if [ "$count" != "$KAFKA_PARTITIONS" ]; then
    echo "topic $name has $count partitions, KAFKA_PARTITIONS is $KAFKA_PARTITIONS;" \
      "grow it with kafka-topics.sh --alter (see deploy/README.md, Scale)" >&2
    exit 1
  fi
done
echo "topics ready with $KAFKA_PARTITIONS partitions:$created"
