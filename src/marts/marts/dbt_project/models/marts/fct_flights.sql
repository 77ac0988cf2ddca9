{#- One row per scheduled departure. Partitioned by month in Dagster: a run rebuilds only the
    months in [var('min_date'), var('max_date')), deleting them first, so a reloaded raw month
    replaces its rows instead of adding to them. -#}
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
where flight_date >= cast('{{ var("min_date") }}' as date)
  and flight_date < cast('{{ var("max_date") }}' as date)
