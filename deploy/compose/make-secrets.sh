#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Writes the secrets that compose.yaml mounts into ./secrets/ (or into DIR, the first
# argument): random values, generated once. A file that exists is kept, so running it
# again changes nothing; delete a file to make a new value (and recreate what uses it).
set -eu
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
# The folder keeps other users of this host out. The files must stay readable to the
# containers' own users (Compose mounts them as they are), hence 0644 inside a 0700 folder.
chmod 700 "$dir"

random() {
  # 32 characters from [A-Za-z0-9]: safe inside URLs without escaping.
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32
}

write() {  # write NAME VALUE: unless NAME exists
  if [ ! -e "$dir/$1" ]; then
    (umask 022 && printf '%s' "$2" >"$dir/$1")
    echo "wrote $dir/$1"
  fi
}

write secret_key "$(random)"
write postgres_password "$(random)"
write redis_password "$(random)"
write metrics_token "$(random)"
write minio_root_user "potluck"
write minio_root_password "$(random)"
write grafana_admin_password "$(random)"
# Derived from the values above (read back, so they agree even when those were kept).
write database_url "postgresql://potluck:$(cat "$dir/postgres_password")@postgres:5432/potluck"
write redis_url "redis://:$(cat "$dir/redis_password")@redis:6379/0"
write aws_credentials "$(printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$(cat "$dir/minio_root_user")" "$(cat "$dir/minio_root_password")")"
