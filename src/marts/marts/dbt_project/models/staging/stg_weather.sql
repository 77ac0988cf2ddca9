select
    {{ clean_text('origin') }} as airport_code,
    cast(time_hour as timestamptz) as observed_hour,
    cast(temp as double precision) as temperature_f,
    cast(dewp as double precision) as dew_point_f,
    cast(humid as double precision) as relative_humidity,
    cast(wind_dir as integer) as wind_direction_deg,
    cast(wind_speed as double precision) as wind_speed_mph,
    cast(wind_gust as double precision) as wind_gust_mph,
    cast(precip as double precision) as precipitation_in,
    cast(pressure as double precision) as pressure_mb,
    cast(visib as double precision) as visibility_miles
from {{ source('raw', 'weather') }}
