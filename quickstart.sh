#!/usr/bin/env bash
# Quick start: install what is missing, build and install health_pass, start
# a local cluster with the extension preloaded, load a trust list and sample
# passes, and print how to connect.  Re-running restarts the same cluster.
set -euo pipefail
cd "$(dirname "$0")"
bash test/deps.sh
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export PATH="$(pg_config --bindir):$PATH"
make -s >/dev/null && $SUDO make -s install >/dev/null
. test/cluster.sh
DIR=${HP_DEMO_DIR:-/tmp/health_pass_demo}
PORT=${HP_DEMO_PORT:-5499}
[ -d "$DIR/pg/data" ] && hp_cluster_stop "$DIR/pg"
rm -rf "$DIR"
mkdir -p "$DIR" && chmod 755 "$DIR"
hp_cluster_start "$DIR/pg" "$PORT"
createdb health_pass_demo
export PGDATABASE=health_pass_demo
psql -Xq -c "CREATE EXTENSION health_pass" \
     -c "ALTER DATABASE health_pass_demo SET search_path = \"\$user\", public, health_pass"
python3 test/gen.py sample "$DIR/sample.sql"
psql -Xq -f "$DIR/sample.sql" >/dev/null
psql -X -c "SELECT id, health_pass.kind(pass), health_pass.expires_at(pass)::date AS expires,
                   (health_pass.check(pass)).reason, pass @@ now() AS valid_now
              FROM public.passes ORDER BY id"
# the access policy: passes is protected, clerk may read 5 subjects an hour for 'care'
psql -Xq <<'SQL' >/dev/null
CREATE ROLE clerk LOGIN;
GRANT USAGE ON SCHEMA health_pass TO clerk;
GRANT SELECT ON public.passes TO clerk;
SELECT health_pass.protect('public.passes', 'id');
SELECT health_pass.allow('clerk', 'public.passes', 'care', 5, '1 hour');
SQL
cat <<MSG
health_pass is running: $(psql -XAtc "SELECT count(*) FROM health_pass.trust_list") DSCs in the trust list, $(psql -XAtc "SELECT count(*) FROM public.passes") sample passes in public.passes.
Connect with:
    psql -h $DIR/pg -p $PORT -U postgres health_pass_demo
Try:
    SELECT health_pass.payload(pass) FROM passes LIMIT 1;
    SELECT count(*) FROM passes WHERE pass @@ now();
public.passes is protected (README, "Investigating an access"):
    SET ROLE clerk; SET health_pass.purpose = 'care';
    SELECT id, health_pass.kind(pass) FROM passes WHERE id = 3;
    RESET ROLE; SELECT logged_at, current_user_name, purpose, outcome FROM health_pass.who_read('passes', '3');
Stop with:
    $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )$HP_PGBIN/pg_ctl -D $DIR/pg/data stop
MSG
