# test/cluster.sh: start and stop a throwaway PostgreSQL cluster (sourced).
#   hp_cluster_start DIR PORT   initdb in DIR, start on PORT with the socket in DIR
#   hp_cluster_stop DIR [MODE]  stop it (MODE: fast or immediate)
# The server runs as the invoking user, or as "postgres" when invoked as root.
# Exports PGHOST, PGPORT, PGUSER, PGDATABASE for the clients that follow.

HP_PGBIN=$(pg_config --bindir)

hp_as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

hp_cluster_start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    hp_as_server "$HP_PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'health_pass'
fsync = off
max_connections = 40
CONF
    hp_as_server "$HP_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log"; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

hp_cluster_stop() {
    hp_as_server "$HP_PGBIN/pg_ctl" -D "$1/data" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
}
