{#- Times in the CSV are local clock readings (hhmm) at the airport; delays are in minutes.
    The scheduled departure is rebuilt in New York time; the actual one is schedule + delay,
    which stays right across midnight where the hhmm reading wraps. -#}
with source as (
    select * from {{ source('raw', 'flights') }}
),

typed as (
    select
        make_date(cast(year as integer), cast(month as integer), cast(day as integer)) as flight_date,
        cast(sched_dep_time as integer) as scheduled_departure_hhmm,
        cast(dep_delay as integer) as departure_delay_min,
        cast(arr_delay as integer) as arrival_delay_min,
        {{ clean_text('carrier') }} as carrier_code,
        cast(flight as integer) as flight_number,
        {{ clean_text('tailnum') }} as tail_number,
        {{ clean_text('origin') }} as origin,
        {{ clean_text('dest') }} as destination,
        cast(air_time as integer) as air_time_min,
        cast(distance as integer) as distance_miles,
        cast(time_hour as timestamptz) as scheduled_departure_hour
    from source
)

select
    {{ surrogate_key(['flight_date', 'carrier_code', 'flight_number', 'origin', 'scheduled_departure_hhmm']) }}
        as flight_id,
    flight_date,
    cast(date_trunc('month', flight_date) as date) as flight_month,
    carrier_code,
    flight_number,
    tail_number,
    origin,
    destination,
    make_timestamptz(
        extract(year from flight_date)::int,
        extract(month from flight_date)::int,
        extract(day from flight_date)::int,
        scheduled_departure_hhmm / 100,
        scheduled_departure_hhmm % 100,
        0,
        'America/New_York'
    ) as scheduled_departure_at,
    scheduled_departure_hour,
    departure_delay_min,
    arrival_delay_min,
    departure_delay_min is null as is_cancelled,
    air_time_min,
    distance_miles
from typed
