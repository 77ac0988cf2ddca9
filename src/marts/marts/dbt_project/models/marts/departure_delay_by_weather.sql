{#- Each departure meets the weather observed at its origin in its scheduled hour. Conditions are
    ranked: low visibility outranks precipitation, which outranks strong wind. -#}
with flights_in_weather as (
    select
        flights.origin,
        flights.departure_delay_min,
        case
            when weather.airport_code is null then 'no observation'
            when weather.visibility_miles < 1 then 'low visibility'
            when weather.precipitation_in > 0 then 'precipitation'
            when weather.wind_speed_mph >= 25 then 'strong wind'
            else 'fair'
        end as weather_condition
    from {{ ref('fct_flights') }} as flights
    left join {{ ref('stg_weather') }} as weather
        on weather.airport_code = flights.origin
        and weather.observed_hour = flights.scheduled_departure_hour
    where not flights.is_cancelled
)

select
    origin,
    weather_condition,
    count(*) as departures,
    round(avg(departure_delay_min), 2) as avg_departure_delay_min,
    round(cast(percentile_cont(0.9) within group (order by departure_delay_min) as numeric), 1) as p90_departure_delay_min,
    round(avg(case when departure_delay_min > 15 then 1.0 else 0.0 end), 4) as delayed_over_15_min_share
from flights_in_weather
group by origin, weather_condition
