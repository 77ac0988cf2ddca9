select
    airport_code,
    airport_name,
    latitude,
    longitude,
    altitude_ft,
    time_zone,
    airport_code in ('EWR', 'JFK', 'LGA') as is_new_york_origin
from {{ ref('stg_airports') }}
