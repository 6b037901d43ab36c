#!/bin/bash
# make-test-pki.sh DIR: throwaway certificates for the TLS tests of etcd resources
# (tests/e2e/etcd_tls.bats, tests/packaging/installed.sh), made with openssl, EC P-256
# keys (fast to make), into DIR:
#   ca.pem ca.key            the test CA
#   server.pem server.key    etcd's certificate: CN etcd-test, names 127.0.0.1, ::1 and localhost
#   other.pem other.key      signed by the CA, but for the name other.example only
#   expired.pem expired.key  for 127.0.0.1 and localhost, expired in 2020
#   client.pem client.key    a client certificate (CN loto-client) signed by the CA
#   nocn.pem nocn.key        a client certificate without a CommonName (O=loto), as etcd
#                            wants one beside authentication
#   ca2.pem ca2.key          another CA, that nobody uses
#   client2.pem client2.key  a client certificate signed by ca2
# Keys are mode 0600. Prints nothing unless something fails.
set -euo pipefail
dir="${1:?usage: make-test-pki.sh DIR}"
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

# ca NAME CN
ca() {
  newkey "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

# leaf NAME CA CN EXT [openssl ca dates...]: a certificate for NAME signed by CA
leaf() {
  local name="$1" ca="$2" cn="$3" ext="$4"
  newkey "$name"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -days 30 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

server_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost'
client_ext='basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'

ca ca "loto test CA"
ca ca2 "loto other CA"
leaf server ca etcd-test "$server_ext"
leaf other ca other.example "basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName=DNS:other.example"
leaf client ca loto-client "$client_ext"
newkey nocn
openssl req -new -key nocn.key -subj "/O=loto" -out nocn.csr
printf '%s\n' "$client_ext" >nocn.ext
openssl x509 -req -in nocn.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile nocn.ext -out nocn.pem 2>/dev/null
rm -f nocn.csr nocn.ext
leaf client2 ca2 loto-client "$client_ext"

# An expired certificate: `openssl ca` is the one command that takes past dates.
newkey expired
openssl req -new -key expired.key -subj "/CN=etcd-test" -out expired.csr
mkdir -p ca.db
: >ca.db/index.txt
printf '%s\n' "$server_ext" >expired.ext
cat >ca.db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = $dir/ca.db/index.txt
new_certs_dir = $dir/ca.db
serial = $dir/ca.db/serial
default_md = sha256
policy = any
[any]
commonName = supplied
CNF
echo 01 >ca.db/serial
openssl ca -batch -notext -config ca.db/ca.cnf -cert ca.pem -keyfile ca.key \
  -startdate 20200101000000Z -enddate 20200102000000Z -extfile expired.ext \
  -in expired.csr -out expired.pem 2>/dev/null
rm -rf ca.db expired.csr expired.ext ./*.srl
chmod 0600 ./*.key
chmod 0644 ./*.pem
