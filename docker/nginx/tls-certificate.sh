#!/bin/sh
# Gives nginx a certificate before it starts: the one mounted at TLS_CERTIFICATE with its key at
# TLS_CERTIFICATE_KEY, or, when neither file exists, a self-signed one for local use, made here
# (and made again when it nears its end). The frontend image runs this from /docker-entrypoint.d/;
# a failure stops the container with the reason.
#
#   TLS_SELF_SIGNED_NAMES  more host names or addresses the self-signed certificate is for,
#                          comma- or space-separated (it always covers localhost, 127.0.0.1, ::1)
set -eu

me=$(basename "$0")
cert=${TLS_CERTIFICATE:?TLS_CERTIFICATE is not set}
key=${TLS_CERTIFICATE_KEY:?TLS_CERTIFICATE_KEY is not set}
# Beside a certificate this script made, so that a mounted one is never replaced.
made_here="$cert.self-signed"

if [ -e "$made_here" ] && ! openssl x509 -checkend 2592000 -noout -in "$cert" >/dev/null 2>&1; then
    echo "$me: the self-signed certificate ends within 30 days: making a new one"
    rm -f "$cert" "$key" "$made_here"
fi
if [ -e "$cert" ] && [ -e "$key" ]; then
    exit 0
fi
if [ -e "$cert" ] || [ -e "$key" ]; then
    echo "$me: only one of $cert and $key exists: mount the certificate and its key, or neither" >&2
    exit 1
fi

names="localhost 127.0.0.1 ::1 $(printf '%s' "${TLS_SELF_SIGNED_NAMES:-}" | tr ',' ' ')"
san=""
for name in $names; do
    case $name in
        *:* | *[!0-9.]*) case $name in *:*) entry="IP:$name" ;; *) entry="DNS:$name" ;; esac ;;
        *) entry="IP:$name" ;;
    esac
    case ",$san," in *",$entry,"*) ;; *) san="${san:+$san,}$entry" ;; esac
done

umask 077
if ! failure=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 365 -subj "/CN=localhost" -addext "subjectAltName=$san" \
    -keyout "$key" -out "$cert" 2>&1); then
    echo "$me: could not make a self-signed certificate at $cert: $failure" >&2
    rm -f "$cert" "$key"
    exit 1
fi
chmod 644 "$cert"
: >"$made_here"
echo "$me: made a self-signed certificate for $san; browsers will warn (mount a real one: see the README)"
