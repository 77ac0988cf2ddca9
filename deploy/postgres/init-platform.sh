#!/usr/bin/env bash
# Rendered from deploy/templates/init-platform.sh.j2 by `uv run render-deploy` from the [tool.platform]
# tables of the pyprojects: edit the template or the tables, never this file.
# Creates Dagster's storage database and the warehouse, with one least-privilege role per location.
# The locations and their grants are rendered from each member's [tool.platform.location] table (the
# arrays below): a role creates tables only in the schemas it writes and reads the tables of the
# schemas it reads.
# A location whose schemas another location reads creates nothing that runs code (functions,
# procedures, views, triggers, rules, policies, operators): the reader would run it with its own
# privileges. An event trigger owned by the superuser enforces that.
# Passwords never appear on a command line (psql reads them from its environment with \getenv) nor in
# the server log (statement logging is off for the sessions that set them).
# Runs once on the postgres service's first start (/docker-entrypoint-initdb.d), and from the tests
# against the embedded server. Each location's role and password are read from
# that location's own env file (PLATFORM_ENV_DIR), so every credential is written down exactly once.
set -euo pipefail

env_dir="${PLATFORM_ENV_DIR:?set PLATFORM_ENV_DIR to the folder holding every <location>.env}"
# Every location, and the schemas it writes and reads (comma-separated), from the location tables.
locations=(ingest_raw marts)
declare -A writes_of=(
    [ingest_raw]="raw"
    [marts]="staging,marts"
)
declare -A reads_of=(
    [ingest_raw]=""
    [marts]="raw"
)

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

psql_as_superuser() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" "$@"
}

declare -A user_of password_of writers_of readers_of
names=()
warehouse_db="" first=""
for name in "${locations[@]}"; do
    writes="${writes_of[$name]}" reads="${reads_of[$name]}"
    user="$(env_value "$env_dir/$name.env" WAREHOUSE_USER)"
    password="$(env_value "$env_dir/$name.env" WAREHOUSE_PASSWORD)"
    db="$(env_value "$env_dir/$name.env" WAREHOUSE_DB)"
    if [[ -z "$first" ]]; then
        warehouse_db="$db" first="$name"
    elif [[ "$db" != "$warehouse_db" ]]; then
        echo "init-platform: WAREHOUSE_DB differs: '$warehouse_db' ($first.env) vs '$db' ($name.env)" >&2
        exit 1
    fi
    for other in "${names[@]}"; do
        if [[ "${user_of[$other]}" == "$user" ]]; then
            echo "init-platform: $other.env and $name.env must name different WAREHOUSE_USER roles" >&2
            exit 1
        fi
    done
    names+=("$name")
    user_of[$name]="$user" password_of[$name]="$password"
    IFS=, read -r -a written <<<"$writes"
    for schema in "${written[@]}"; do
        writers_of[$schema]+="$schema"$'\t'"$user"$'\n'
    done
    IFS=, read -r -a read_schemas <<<"$reads"
    for schema in "${read_schemas[@]}"; do
        readers_of[$schema]+=" $name "
    done
done

# code_free NAME WRITES: true when another location reads a schema that NAME writes.
code_free() {
    local name="$1" schema
    local -a written
    IFS=, read -r -a written <<<"$2"
    for schema in "${written[@]}"; do
        [[ -n "${readers_of[$schema]:-}" && "${readers_of[$schema]}" != " $name " ]] && return 0
    done
    return 1
}

# Passwords reach psql through its environment (\getenv), never its command line.
: "${DAGSTER_PG_PASSWORD:?}"
psql_as_superuser --dbname "${POSTGRES_DB:-postgres}" \
    -v dagster_user="${DAGSTER_PG_USER:?}" -v dagster_db="${DAGSTER_PG_DB:?}" \
    -v warehouse_db="$warehouse_db" <<'SQL'
set client_min_messages = warning;
set log_statement = 'none';
set log_min_duration_statement = -1;
set log_min_error_statement = 'panic';
\getenv dagster_password DAGSTER_PG_PASSWORD
select format('create role %I login password %L', :'dagster_user', :'dagster_password')
    where not exists (select from pg_roles where rolname = :'dagster_user') \gexec
select format('create database %I owner %I', :'dagster_db', :'dagster_user')
    where not exists (select from pg_database where datname = :'dagster_db') \gexec
select format('create database %I', :'warehouse_db')
    where not exists (select from pg_database where datname = :'warehouse_db') \gexec

-- Nobody but its owner reaches Dagster's storage; only the location roles reach the warehouse.
revoke all on database :"dagster_db" from public;
revoke all on database :"warehouse_db" from public;
-- The maintenance databases are for the superuser only.
revoke connect on database postgres, template1 from public;
\connect :"warehouse_db"
revoke create on schema public from public;
SQL

for name in "${locations[@]}"; do
    writes="${writes_of[$name]}" reads="${reads_of[$name]}"
    INIT_LOCATION_PASSWORD="${password_of[$name]}" psql_as_superuser --dbname "${POSTGRES_DB:-postgres}" \
        -v user="${user_of[$name]}" -v warehouse_db="$warehouse_db" <<'SQL'
set client_min_messages = warning;
set log_statement = 'none';
set log_min_duration_statement = -1;
set log_min_error_statement = 'panic';
\getenv password INIT_LOCATION_PASSWORD
select format('create role %I login password %L', :'user', :'password')
    where not exists (select from pg_roles where rolname = :'user') \gexec
grant connect, temporary on database :"warehouse_db" to :"user";
SQL
done

# The schemas stay owned by the superuser: a location owns the tables it creates, never a schema.
for name in "${locations[@]}"; do
    writes="${writes_of[$name]}" reads="${reads_of[$name]}"
    IFS=, read -r -a read_schemas <<<"$reads"
    writers=""
    for schema in "${read_schemas[@]}"; do
        writers+="${writers_of[$schema]:-}"
    done
    psql_as_superuser --dbname "$warehouse_db" -v user="${user_of[$name]}" -v writes="$writes" \
        -v reads="$reads" -v writers="${writers%$'\n'}" <<'SQL'
set client_min_messages = warning;
select format('create schema if not exists %I', schema)
    from unnest(string_to_array(nullif(:'writes', ''), ',')) as schema \gexec
select format('grant usage, create on schema %I to %I', schema, :'user')
    from unnest(string_to_array(nullif(:'writes', ''), ',')) as schema \gexec
select format('grant usage on schema %I to %I', schema, :'user')
    from unnest(string_to_array(nullif(:'reads', ''), ',')) as schema \gexec
select format('grant select on all tables in schema %I to %I', schema, :'user')
    from unnest(string_to_array(nullif(:'reads', ''), ',')) as schema \gexec
-- Tables a writer creates later are readable too: one (schema, writer) pair per line.
select format('alter default privileges for role %I in schema %I grant select on tables to %I',
              split_part(pair, E'\t', 2), split_part(pair, E'\t', 1), :'user')
    from unnest(string_to_array(nullif(:'writers', ''), E'\n')) as pair \gexec
SQL
done

# Roles of code-free locations join platform_no_code; only the others may use a procedural language.
code_free_users="" coding_users=""
for name in "${locations[@]}"; do
    writes="${writes_of[$name]}" reads="${reads_of[$name]}"
    if code_free "$name" "$writes"; then
        code_free_users+="${user_of[$name]},"
    else
        coding_users+="${user_of[$name]},"
    fi
done
psql_as_superuser --dbname "$warehouse_db" -v code_free="${code_free_users%,}" \
    -v coding="${coding_users%,}" <<'SQL'
set client_min_messages = warning;
select 'create role platform_no_code nologin'
    where not exists (select from pg_roles where rolname = 'platform_no_code') \gexec
select format('grant platform_no_code to %I', name)
    from unnest(string_to_array(nullif(:'code_free', ''), ',')) as name \gexec
revoke usage on language sql, plpgsql from public;
select format('grant usage on language sql, plpgsql to %I', name)
    from unnest(string_to_array(nullif(:'coding', ''), ',')) as name \gexec
create schema if not exists platform_guard;
revoke all on schema platform_guard from public;
-- Judged once the command has run (ddl_command_end: its schema is known; raising undoes it). A view
-- runs in its reader's session, so views are allowed only in a schema no other role may use (marts'
-- staging views when another location reads marts): the grants themselves say which.
create or replace function platform_guard.refuse_code_from_no_code_roles() returns event_trigger
language plpgsql as $$
declare
    made record;
begin
    if not exists (
        select from pg_auth_members m
        join pg_roles g on g.oid = m.roleid and g.rolname = 'platform_no_code'
        join pg_roles r on r.oid = m.member and r.rolname in (session_user, current_user)
    ) then
        return;
    end if;
    for made in select * from pg_event_trigger_ddl_commands() loop
        if made.command_tag not like '% VIEW' or made.schema_name is null or exists (
            select from pg_namespace n, aclexplode(n.nspacl) a
            where n.nspname = made.schema_name and a.privilege_type = 'USAGE' and a.grantee <> n.nspowner
              and a.grantee not in (select oid from pg_roles where rolname in (session_user, current_user))
        ) then
            raise exception using
                errcode = 'insufficient_privilege',
                message = format('%s %s is not allowed for role %s', tg_tag, made.object_identity, session_user),
                hint = case when made.command_tag like '% VIEW' and made.schema_name is not null
                    then format('Another location reads schema %s: a view there would run code in its'
                        ' sessions.', made.schema_name)
                    else 'Another location reads what this role writes, so it may create and load tables'
                        ' only: nothing that runs code (functions, procedures, triggers, rules, policies,'
                        ' operators; views only in a schema no other location reads).' end;
        end if;
    end loop;
end
$$;
drop event trigger if exists platform_refuse_code;
drop event trigger if exists platform_refuse_shared_views;
create event trigger platform_refuse_code on ddl_command_end
    when tag in (
        'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE', 'CREATE AGGREGATE',
        'ALTER AGGREGATE', 'CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW',
        'ALTER MATERIALIZED VIEW', 'CREATE TRIGGER', 'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY',
        'CREATE OPERATOR', 'CREATE CAST', 'CREATE CONVERSION', 'CREATE TRANSFORM',
        'CREATE OPERATOR CLASS', 'CREATE OPERATOR FAMILY'
    )
    execute function platform_guard.refuse_code_from_no_code_roles();
SQL
