#!/usr/bin/env bash
# Makes the certificates the TLS tests use, with the openssl CLI, in DIR:
#   ca.pem/ca.key            the test CA
#   alpha.pem/.key, beta.pem/.key   leaf certificates (subjectAltName DNS:alpha / DNS:beta) from the CA
#   other-ca.pem, beta-other.pem/.key   a second CA, and beta's certificate from it (wrong CA)
#   beta-expired.pem/.key    beta's certificate from the CA, valid only in 2020 (expired)
#   gamma.pem/.key           a certificate from the CA for host gamma (another host)
#   beta-self.pem/.key       a self-signed certificate for beta (for a pinned fingerprint)
#   nbd-server/              an NBD export's directory as qemu-nbd and nbdkit lay it out:
#                            ca-cert.pem, server-cert.pem (DNS:localhost, IP:127.0.0.1), server-key.pem
#   nbd-client/              a client's (libnbd's tls-certificates=, qemu's tls-creds-x509 dir):
#                            ca-cert.pem, client-cert.pem, client-key.pem
#   nbd-client-other/        the same with a client certificate from the other CA
# Usage: make-test-pki.sh DIR
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() {  # name
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=replica test $1" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() {  # file, host, ca, [startdate enddate]  (SAN: $SAN, else DNS:host)
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "${SAN:-DNS:$2}" > "$1.ext"
    if [ -n "${4:-}" ]; then
        # `openssl ca` sets any validity period (x509 -req only counts days from now).
        mkdir -p "ca-$3"
        : > "ca-$3/index.txt"
        [ -f "ca-$3/serial" ] || echo 1000 > "ca-$3/serial"
        cat > "ca-$3/ca.cnf" <<CNF
[ ca ]
default_ca = test
[ test ]
database = ca-$3/index.txt
serial = ca-$3/serial
new_certs_dir = ca-$3
default_md = sha256
policy = any
copy_extensions = none
[ any ]
commonName = supplied
CNF
        openssl ca -batch -config "ca-$3/ca.cnf" -cert "$3.pem" -keyfile "$3.key" -in "$1.csr" -out "$1.pem" \
            -startdate "$4" -enddate "$5" -extfile "$1.ext" -notext 2>/dev/null
    else
        openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
    fi
}
ca ca
ca other-ca
leaf alpha alpha ca
leaf beta beta ca
leaf beta-other beta other-ca
leaf beta-expired beta ca 20200101000000Z 20200102000000Z
leaf gamma gamma ca
key beta-self.key
openssl req -x509 -new -key beta-self.key -out beta-self.pem -days 2 -subj "/CN=beta" -addext "subjectAltName=DNS:beta" 2>/dev/null
SAN="DNS:localhost,IP:127.0.0.1" leaf nbd-server-leaf localhost ca
leaf nbd-client-leaf client ca
leaf nbd-client-other-leaf client other-ca
mkdir -p nbd-server nbd-client nbd-client-other
cp ca.pem nbd-server/ca-cert.pem; cp nbd-server-leaf.pem nbd-server/server-cert.pem; cp nbd-server-leaf.key nbd-server/server-key.pem
cp ca.pem nbd-client/ca-cert.pem; cp nbd-client-leaf.pem nbd-client/client-cert.pem; cp nbd-client-leaf.key nbd-client/client-key.pem
cp ca.pem nbd-client-other/ca-cert.pem; cp nbd-client-other-leaf.pem nbd-client-other/client-cert.pem; cp nbd-client-other-leaf.key nbd-client-other/client-key.pem
chmod 600 ./*.key nbd-*/*-key.pem
