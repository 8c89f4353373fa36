#!/usr/bin/env bash
# Signing benchmark (issue 14 section 5; not a test: numbers vary by machine).
# On one core, in one run, signatures per second of
#   - openssl speed ecdsap256 / rsa2048 sign/s (the references)
#   - health_pass._sign() with a PEM key (file:) and with the same key in a
#     SoftHSM2 token (pkcs11:), ES256 and PS256; each call opens the key as
#     issue() does (row, grant, key file checks, cached key) and signs
# and print the ratios.  bash test/bench/signing.sh (HP_BENCH_SIGN_N rows);
# make bench runs it from run.sh.  Rates are per second of CPU time of the
# backend (/proc/PID/schedstat), as openssl speed divides by its CPU time
# (test/bench/issue.sh says why).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${HP_BENCH_SIGN_N:-20000}
bash test/deps.sh
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export PATH="$(pg_config --bindir):$PATH"
make -s >/dev/null && $SUDO make -s install >/dev/null
. test/cluster.sh
WORK=$(mktemp -d /tmp/health_pass_sign_bench.XXXXXX); chmod 755 "$WORK"
trap 'hp_cluster_stop "$WORK/pg"; rm -rf "$WORK"' EXIT
[ "$(id -u)" = 0 ] && chown postgres "$WORK"

# keys, certificates and a SoftHSM2 token, made by the server's OS user
export SOFTHSM2_CONF=$WORK/softhsm2.conf
hp_as_server env WORK="$WORK" bash -euc '
cd "$WORK"; umask 077; mkdir keys tokens
printf "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n" "$WORK" > softhsm2.conf
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 4321 >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out keys/es.pem -quiet
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out keys/rsa.pem -quiet
for k in es rsa; do
  openssl req -new -x509 -key keys/$k.pem -subj "/C=FR/CN=bench $k" -days 30 -outform DER -out $k.der
  openssl pkcs8 -topk8 -nocrypt -in keys/$k.pem -out $k.pk8
  softhsm2-util --import $k.pk8 --token bench --label $k --id 0$((${#k})) --pin 1234 >/dev/null
done
printf "1234\n" > keys/pin; chmod 644 es.der rsa.der'
hp_cluster_start "$WORK/pg" $((55000 + RANDOM % 900))
cat >>"$WORK/pg/data/postgresql.conf" <<CONF
health_pass.key_directory = '$WORK/keys'
health_pass.pkcs11_module = '/usr/lib/softhsm/libsofthsm2.so'
health_pass.pkcs11_pin_file = 'pin'
CONF
psql -XAtq -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
psql -Xq <<SQL
CREATE EXTENSION health_pass;
SELECT health_pass.signing_key_add('pem-es', pg_read_binary_file('$WORK/es.der'), 'file:es.pem') \g /dev/null
SELECT health_pass.signing_key_add('pem-rsa', pg_read_binary_file('$WORK/rsa.der'), 'file:rsa.pem') \g /dev/null
SELECT health_pass.signing_key_add('hsm-es', pg_read_binary_file('$WORK/es.der'), 'pkcs11:token=bench;object=es') \g /dev/null
SELECT health_pass.signing_key_add('hsm-rsa', pg_read_binary_file('$WORK/rsa.der'), 'pkcs11:token=bench;object=rsa') \g /dev/null
CREATE FUNCTION cpu_ns() RETURNS bigint LANGUAGE sql AS
  \$\$ SELECT split_part(pg_read_file('/proc/' || pg_backend_pid() || '/schedstat'), ' ', 1)::bigint \$\$;
CREATE FUNCTION rate(k text, n int) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE c0 bigint; c bigint; best numeric := 0;
BEGIN
    FOR i IN 1..3 LOOP
        c0 := cpu_ns();
        SELECT count(health_pass._sign(k, convert_to('message ' || j, 'UTF8'))) INTO c
          FROM generate_series(1, n) j;
        best := greatest(best, c / ((cpu_ns() - c0) / 1e9));
    END LOOP;
    RETURN round(best);
END \$\$;
SQL
q() { psql -XAtq -c "$1"; }
ossl_es=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ {print $(NF-1)}')
pem_es=$(q "SELECT rate('pem-es', $N)")
hsm_es=$(q "SELECT rate('hsm-es', $N)")
ossl_rsa=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $(NF-1)}')
pem_rsa=$(q "SELECT rate('pem-rsa', $((N / 10)))")
hsm_rsa=$(q "SELECT rate('hsm-rsa', $((N / 10)))")
python3 - "$ossl_es" "$pem_es" "$hsm_es" "$ossl_rsa" "$pem_rsa" "$hsm_rsa" <<'PY'
import sys
oe, pe, he, orsa, prsa, hrsa = map(float, sys.argv[1:])
print("signing.sh, per CPU second (one core):")
print("openssl speed ecdsap256 sign/s      : %9.0f" % oe)
print("ES256 PEM key (file:) sign/s        : %9.0f  ratio %.2f" % (pe, pe / oe))
print("ES256 SoftHSM2 (pkcs11:) sign/s     : %9.0f  ratio %.2f" % (he, he / oe))
print("openssl speed rsa2048 sign/s        : %9.0f" % orsa)
print("PS256 PEM key (file:) sign/s        : %9.0f  ratio %.2f" % (prsa, prsa / orsa))
print("PS256 SoftHSM2 (pkcs11:) sign/s     : %9.0f  ratio %.2f" % (hrsa, hrsa / orsa))
PY
