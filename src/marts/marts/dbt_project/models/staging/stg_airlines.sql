select
    {{ clean_text('carrier') }} as carrier_code,
    {{ clean_text('name') }} as carrier_name
from {{ source('raw', 'airlines') }}
