#!/bin/sh
# Makes the secrets docker-compose.yml mounts, as files in ./secrets/ (or the folder given):
# 32 random bytes from /dev/urandom each, as hex. A file that exists is kept, so running this again
# never changes a secret in use. `make secrets` runs it; git ignores the folder.
set -eu

dir=${1:-secrets}
made=""

random_hex() {
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

write() {
    [ -e "$dir/$1" ] && return
    printf '%s\n' "$2" >"$dir/$1"
    # The containers' users (10001 for the API and workers, Redis's, Flower's) do not own the
    # file, so it is readable; the folder, 700, keeps the machine's other users out.
    chmod 644 "$dir/$1"
    made="$made $1"
}

umask 077
mkdir -p "$dir"
chmod 700 "$dir"

write redis_password "$(random_hex)"
write api_keys.json "{\"k_$(random_hex)\": \"admin\"}"
write session_secret "$(random_hex)"
write watch_token_secrets.json "{\"$(date -u +%Y-%m)\": \"$(random_hex)\"}"

if [ -n "$made" ]; then
    echo "made in $dir/:$made"
    echo "the API key (of principal \"admin\") is the key in $dir/api_keys.json"
else
    echo "$dir/ has every secret already; none changed"
fi
