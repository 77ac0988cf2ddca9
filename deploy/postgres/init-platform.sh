#!/usr/bin/env bash
# Creates Dagster's storage database and the warehouse, with one least-privilege role per location:
#   ingest role: writes `raw` only, and creates nothing that runs code;
#   marts role: reads `raw`, writes `staging` and `marts`.
# Passwords never appear on a command line (psql reads them from its environment with \getenv) nor in
# the server log (statement logging is off for the session that sets them).
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

: "${DAGSTER_PG_PASSWORD:?}"
INIT_INGEST_PASSWORD="$ingest_password" INIT_MARTS_PASSWORD="$marts_password" \
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v dagster_user="${DAGSTER_PG_USER:?}" \
    -v dagster_db="${DAGSTER_PG_DB:?}" -v warehouse_db="$ingest_db" \
    -v ingest_user="$ingest_user" -v marts_user="$marts_user" <<'SQL'
set client_min_messages = warning;

-- Passwords: from the environment (never argv), through statements this session does not log.
set log_statement = 'none';
set log_min_duration_statement = -1;
set log_min_error_statement = 'panic';
\getenv dagster_password DAGSTER_PG_PASSWORD
\getenv ingest_password INIT_INGEST_PASSWORD
\getenv marts_password INIT_MARTS_PASSWORD
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
-- The maintenance databases are for the superuser only.
revoke connect on database postgres, template1 from public;

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

-- Nothing that runs code from the ingest role (#9): marts reads `raw`, so a function, view, trigger,
-- rule or policy made by the ingest role would run with marts' privileges. Members of platform_no_code
-- may create and load tables only; an event trigger (owned by the superuser) refuses the rest, and no
-- role but marts may use a procedural language.
select 'create role platform_no_code nologin'
    where not exists (select from pg_roles where rolname = 'platform_no_code') \gexec
grant platform_no_code to :"ingest_user";
revoke usage on language sql, plpgsql from public;
grant usage on language sql, plpgsql to :"marts_user";
create schema if not exists platform_guard;
revoke all on schema platform_guard from public;
create or replace function platform_guard.refuse_code_from_no_code_roles() returns event_trigger
language plpgsql as $$
begin
    if exists (
        select from pg_auth_members m
        join pg_roles g on g.oid = m.roleid and g.rolname = 'platform_no_code'
        join pg_roles r on r.oid = m.member and r.rolname in (session_user, current_user)
    ) then
        raise exception using
            errcode = 'insufficient_privilege',
            message = format('%s is not allowed for role %s', tg_tag, session_user),
            hint = 'This role may create and load tables only: nothing that runs code (functions, '
                'procedures, views, triggers, rules, policies, operators).';
    end if;
end
$$;
drop event trigger if exists platform_refuse_code;
create event trigger platform_refuse_code on ddl_command_start
    when tag in (
        'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE', 'CREATE AGGREGATE',
        'ALTER AGGREGATE', 'CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW', 'CREATE TRIGGER',
        'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY', 'CREATE OPERATOR', 'CREATE CAST',
        'CREATE CONVERSION', 'CREATE TRANSFORM', 'CREATE OPERATOR CLASS', 'CREATE OPERATOR FAMILY'
    )
    execute function platform_guard.refuse_code_from_no_code_roles();
SQL
