#!/usr/bin/env bash
# Interleaved pairs of pgbench point lookups at -j 4 on a 1,000,000-row table:
# unprotected copy, then protected (audit_sync off), N pairs (10) of S
# seconds (6); prints each pair's ratio and their median, measured in one run.
cd "$(dirname "$0")/../.."
export PATH="$(pg_config --bindir):$PATH"
. test/cluster.sh
DIR=$(mktemp -d /tmp/hp_pairs.XXXXXX); chmod 755 $DIR
PORT=$((57000 + RANDOM % 900))
trap 'hp_cluster_stop "$DIR/pg"; rm -rf "$DIR"' EXIT
hp_cluster_start "$DIR/pg" "$PORT" >/dev/null || exit 1
cat >>"$DIR/pg/data/postgresql.conf" <<CONF
fsync = on
shared_buffers = 512MB
CONF
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w restart >/dev/null
export PGDATABASE=bench; createdb bench
psql -XAtq <<'SQL'
CREATE EXTENSION health_pass;
CREATE ROLE reader LOGIN; GRANT USAGE ON SCHEMA health_pass TO reader;
CREATE TABLE registry (person_id text PRIMARY KEY, n int NOT NULL, name text, doses int);
INSERT INTO registry SELECT 'P' || i, i, 'name ' || i, i % 4 FROM generate_series(1, 1000000) i;
CREATE TABLE registry_copy AS SELECT * FROM registry; ALTER TABLE registry_copy ADD PRIMARY KEY (person_id);
VACUUM ANALYZE registry; VACUUM ANALYZE registry_copy;
GRANT SELECT ON registry, registry_copy TO reader;
SELECT health_pass.protect('registry', 'person_id'); SELECT health_pass.allow('reader', 'registry', 'bench');
SQL
for t in registry registry_copy; do
  printf '\\set id random(1, 1000000)\nSELECT name, doses FROM %s WHERE person_id = '"'"'P'"'"' || :id;\n' "$t" >"$DIR/$t.sql"; done
run() { PGOPTIONS="-c health_pass.purpose=bench" pgbench -n -U reader -M prepared -c 4 -j 4 -T $2 -f "$DIR/$1.sql" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+) .*/\1/p'; }
run registry_copy 4 >/dev/null; run registry 4 >/dev/null
R=
for i in $(seq ${N:-10}); do b=$(run registry_copy ${S:-6}); p=$(run registry ${S:-6}); r=$(awk -v a=$p -v b=$b 'BEGIN{printf "%.3f", a/b}'); echo "pair $i: $b $p $r"; R="$R $r"; done
echo "median ratio: $(echo $R | tr ' ' '\n' | sort -g | awk '{v[NR]=$1} END {print (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2}')"
