#!/usr/bin/env bash
# Generate a private CA and TLS certificates for a dask cluster (scheduler, worker, client).
#
#   cluster/tls/make-certs.sh /etc/quantdask/tls "DNS:sched.example.org,IP:10.0.0.5"
#
# $1: output directory (created, mode 700); $2: extra subjectAltName entries (optional).
# Writes ca.pem (distribute to every node), ca-key.pem (keep offline), and for each role
# <role>.pem / <role>-key.pem. Certificates are valid for QD_TLS_DAYS days (default 365).
set -euo pipefail
out=${1:?usage: make-certs.sh OUT_DIR [EXTRA_SAN]}
extra_san=${2:-}
days=${QD_TLS_DAYS:-365}
san="DNS:localhost,IP:127.0.0.1${extra_san:+,$extra_san}"
mkdir -p "$out"
chmod 700 "$out"
cd "$out"
umask 077

openssl req -x509 -newkey rsa:2048 -nodes -days "$days" \
    -keyout ca-key.pem -out ca.pem -subj "/CN=quantdask-dask-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null

for role in scheduler worker client; do
    openssl req -newkey rsa:2048 -nodes -keyout "$role-key.pem" -out "$role.csr" \
        -subj "/CN=quantdask-$role" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' \
        "$san" >"$role.ext"
    openssl x509 -req -in "$role.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -days "$days" -out "$role.pem" -extfile "$role.ext" 2>/dev/null
    rm -f "$role.csr" "$role.ext"
done
rm -f ca.srl
chmod 644 ca.pem scheduler.pem worker.pem client.pem
echo "certificates in $out: ca.pem, {scheduler,worker,client}{.pem,-key.pem}"
