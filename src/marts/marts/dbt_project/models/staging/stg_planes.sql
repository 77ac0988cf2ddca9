select
    {{ clean_text('tailnum') }} as tail_number,
    cast(year as integer) as year_built,
    {{ clean_text('type') }} as aircraft_type,
    {{ clean_text('manufacturer') }} as manufacturer,
    {{ clean_text('model') }} as model,
    cast(engines as integer) as engines,
    cast(seats as integer) as seats,
    cast(speed as integer) as cruising_speed_mph,
    {{ clean_text('engine') }} as engine_type
from {{ source('raw', 'planes') }}
