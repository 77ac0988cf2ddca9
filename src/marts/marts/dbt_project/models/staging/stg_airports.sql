select
    {{ clean_text('faa') }} as airport_code,
    {{ clean_text('name') }} as airport_name,
    cast(lat as double precision) as latitude,
    cast(lon as double precision) as longitude,
    cast(alt as integer) as altitude_ft,
    cast(tz as integer) as utc_offset_hours,
    {{ clean_text('dst') }} as dst_rule,
    {{ clean_text('tzone') }} as time_zone
from {{ source('raw', 'airports') }}
