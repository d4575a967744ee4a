#!/usr/bin/env sh
# Regenerates the DSA vectors (throwaway keys: see ../README.md). Needs openssl 3.
set -eu
cd "$(dirname "$0")"
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -out params.pem
openssl genpkey -paramfile params.pem -out dsa.pkcs8.pem
rm params.pem
openssl pkcs8 -topk8 -nocrypt -in dsa.pkcs8.pem -outform DER -out dsa.pkcs8.der
openssl pkey -in dsa.pkcs8.pem -traditional -outform DER -out dsa.traditional.der
openssl pkey -in dsa.pkcs8.pem -traditional -out dsa.traditional.pem
openssl pkcs8 -topk8 -in dsa.pkcs8.pem -v2 aes-256-cbc -passout pass:throwaway -out dsa.encrypted.pem
openssl req -new -x509 -key dsa.pkcs8.pem -sha256 -days 36500 -subj "/O=nhs/OU=Devices/CN=dsa.example.nhs.uk" \
  -set_serial 1 -addext "extendedKeyUsage=clientAuth,serverAuth" -out dsa.cert.pem
