{#- One row per scheduled departure. Partitioned by month in Dagster: a run rebuilds only the
    months in [MARTS_WINDOW_START, MARTS_WINDOW_END) (environment; unset or empty: the whole of 2013),
    deleting them first, so a reloaded raw month replaces its rows instead of adding to them.
    Environment variables rather than --vars: dbt re-parses the whole project when vars change. -#}
{{
    config(
        materialized='incremental',
        tags=['monthly'],
        incremental_strategy='delete+insert',
        unique_key='flight_month',
        on_schema_change='fail',
        indexes=[{'columns': ['flight_month']}, {'columns': ['carrier_code']}],
    )
}}
{#- Its relationships tests read the dimensions, so they must be built first: -#}
-- depends_on: {{ ref('dim_carriers') }}
-- depends_on: {{ ref('dim_airports') }}
{#- stg_flights is a view over every month; the month this model rebuilds comes from raw.flights: -#}
-- depends_on: {{ source('raw', 'flights') }}

select
    flight_id,
    flight_date,
    flight_month,
    carrier_code,
    flight_number,
    tail_number,
    origin,
    destination,
    scheduled_departure_at,
    scheduled_departure_hour,
    departure_delay_min,
    arrival_delay_min,
    is_cancelled,
    arrival_delay_min <= 15 as is_on_time,
    air_time_min,
    distance_miles
from {{ ref('stg_flights') }}
where flight_date >= cast('{{ env_var("MARTS_WINDOW_START", "") or "2013-01-01" }}' as date)
  and flight_date < cast('{{ env_var("MARTS_WINDOW_END", "") or "2014-01-01" }}' as date)
