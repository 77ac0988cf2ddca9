{{ config(severity='error', meta={'dagster': {'ref': {'name': 'fct_flights'}}}) }}
{#- Every month present in fct_flights holds exactly the flights staging has for that month:
    an incremental run that lost or doubled rows for a month shows up here, and (severity error)
    keeps the marts built on fct_flights from being rebuilt on top of it. -#}
with built as (
    select flight_month, count(*) as built_flights
    from {{ ref('fct_flights') }}
    group by flight_month
),

staged as (
    select flight_month, count(*) as staged_flights
    from {{ ref('stg_flights') }}
    group by flight_month
)

select built.flight_month, built.built_flights, coalesce(staged.staged_flights, 0) as staged_flights
from built
left join staged using (flight_month)
where built.built_flights <> coalesce(staged.staged_flights, 0)
