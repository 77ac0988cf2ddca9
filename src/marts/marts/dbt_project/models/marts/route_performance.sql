select
    flights.origin,
    flights.destination,
    destinations.airport_name as destination_name,
    count(*) as flights,
    count(distinct flights.carrier_code) as carriers,
    max(flights.distance_miles) as distance_miles,
    round(avg(flights.air_time_min), 1) as avg_air_time_min,
    round(avg(flights.arrival_delay_min), 2) as avg_arrival_delay_min,
    round(avg(case when flights.is_on_time then 1.0 else 0.0 end)
        filter (where flights.arrival_delay_min is not null), 4) as on_time_share
from {{ ref('fct_flights') }} as flights
left join {{ ref('dim_airports') }} as destinations
    on destinations.airport_code = flights.destination
group by flights.origin, flights.destination, destinations.airport_name
