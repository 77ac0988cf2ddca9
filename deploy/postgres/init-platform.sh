#!/usr/bin/env bash
# Creates Dagster's storage database and the warehouse, with one least-privilege role per location:
#   ingest role: writes `raw` only;  marts role: reads `raw`, writes `staging` and `marts`.
# Runs once on the postgres service's first start (/docker-entrypoint-initdb.d), and from
# `uv run stack-local` against the embedded server. Each location's role and password are read from
# that location's own env file (PLATFORM_ENV_DIR), so every credential is written down exactly once.
set -euo pipefail

env_dir="${PLATFORM_ENV_DIR:?set PLATFORM_ENV_DIR to the folder holding ingest_raw.env and marts.env}"

# env_value FILE NAME: the value of NAME=... in a compose env file (the last line wins, like compose).
env_value() {
    local file="$1" name="$2" value
    if [[ ! -f "$file" ]]; then
        echo "init-platform: $file is missing (create it from $(basename "$file").template)" >&2
        return 1
    fi
    value="$(sed -n "s/^${name}=//p" "$file" | tail -n 1)"
    if [[ -z "$value" ]]; then
        echo "init-platform: $name is empty in $file" >&2
        return 1
    fi
    printf '%s' "$value"
}

ingest_user="$(env_value "$env_dir/ingest_raw.env" WAREHOUSE_USER)"
ingest_password="$(env_value "$env_dir/ingest_raw.env" WAREHOUSE_PASSWORD)"
ingest_db="$(env_value "$env_dir/ingest_raw.env" WAREHOUSE_DB)"
marts_user="$(env_value "$env_dir/marts.env" WAREHOUSE_USER)"
marts_password="$(env_value "$env_dir/marts.env" WAREHOUSE_PASSWORD)"
marts_db="$(env_value "$env_dir/marts.env" WAREHOUSE_DB)"
if [[ "$ingest_db" != "$marts_db" ]]; then
    echo "init-platform: WAREHOUSE_DB differs: '$ingest_db' (ingest_raw.env) vs '$marts_db' (marts.env)" >&2
    exit 1
fi
if [[ "$ingest_user" == "$marts_user" ]]; then
    echo "init-platform: ingest_raw.env and marts.env must name different WAREHOUSE_USER roles" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v dagster_user="${DAGSTER_PG_USER:?}" -v dagster_password="${DAGSTER_PG_PASSWORD:?}" \
    -v dagster_db="${DAGSTER_PG_DB:?}" -v warehouse_db="$ingest_db" \
    -v ingest_user="$ingest_user" -v ingest_password="$ingest_password" \
    -v marts_user="$marts_user" -v marts_password="$marts_password" <<'SQL'
set client_min_messages = warning;
select format('create role %I login password %L', :'dagster_user', :'dagster_password')
    where not exists (select from pg_roles where rolname = :'dagster_user') \gexec
select format('create role %I login password %L', :'ingest_user', :'ingest_password')
    where not exists (select from pg_roles where rolname = :'ingest_user') \gexec
select format('create role %I login password %L', :'marts_user', :'marts_password')
    where not exists (select from pg_roles where rolname = :'marts_user') \gexec

select format('create database %I owner %I', :'dagster_db', :'dagster_user')
    where not exists (select from pg_database where datname = :'dagster_db') \gexec
select format('create database %I', :'warehouse_db')
    where not exists (select from pg_database where datname = :'warehouse_db') \gexec

-- Nobody but its owner reaches Dagster's storage; only the two location roles reach the warehouse.
revoke all on database :"dagster_db" from public;
revoke all on database :"warehouse_db" from public;
grant connect, temporary on database :"warehouse_db" to :"ingest_user", :"marts_user";

\connect :"warehouse_db"
set client_min_messages = warning;
revoke create on schema public from public;
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists marts;

-- The schemas stay owned by the superuser: a location owns the tables it creates, never a schema.
grant usage, create on schema raw to :"ingest_user";
grant usage on schema raw to :"marts_user";
grant select on all tables in schema raw to :"marts_user";
alter default privileges for role :"ingest_user" in schema raw grant select on tables to :"marts_user";
grant usage, create on schema staging, marts to :"marts_user";
SQL
