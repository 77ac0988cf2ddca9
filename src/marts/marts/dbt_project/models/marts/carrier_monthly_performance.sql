{#- On time = arrived no more than 15 minutes late (the US DOT definition), among flights that
    arrived; cancelled and diverted flights count as flights but not in the delay figures. -#}
select
    flights.carrier_code,
    carriers.carrier_name,
    flights.flight_month,
    count(*) as flights,
    count(*) filter (where flights.is_cancelled) as cancelled_flights,
    round(avg(case when flights.is_on_time then 1.0 else 0.0 end)
        filter (where flights.arrival_delay_min is not null), 4) as on_time_share,
    round(avg(flights.departure_delay_min), 2) as avg_departure_delay_min,
    round(cast(percentile_cont(0.9) within group (order by flights.departure_delay_min) as numeric), 1) as p90_departure_delay_min,
    round(avg(flights.arrival_delay_min), 2) as avg_arrival_delay_min,
    round(cast(percentile_cont(0.9) within group (order by flights.arrival_delay_min) as numeric), 1) as p90_arrival_delay_min
from {{ ref('fct_flights') }} as flights
left join {{ ref('dim_carriers') }} as carriers using (carrier_code)
group by flights.carrier_code, carriers.carrier_name, flights.flight_month
