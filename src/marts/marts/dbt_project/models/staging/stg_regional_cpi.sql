-- One row per region and month, the two measures side by side; JSON-stat month codes become dates.
select
    region as region_code,
    max(region_label) as region_name,
    to_date(month, 'YYYY"M"MM') as month_start,
    max(value) filter (where contents = 'cpi') as cpi,
    max(value) filter (where contents = 'change_12m') as change_12m_pct
from {{ source('raw', 'regional_cpi') }}
group by region, month
